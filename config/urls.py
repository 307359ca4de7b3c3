from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import PasswordResetView
from bookings.feeds import tutor_feed
from config.observability import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script,
    # so the Content-Security-Policy needs no 'unsafe-inline'.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # The tutor's own calendars: /tutor/calendars/ and /api/tutor/calendars/.
    path("", include("calendars.urls")),
    # Prepaid packages: /api/packages/..., /tutor/packages/, /p/<token>/ (packages app).
    path("api/packages/", include("packages.api_urls")),
    path("", include("packages.urls")),
    path("api/", include("bookings.api.urls")),
    path("payments/", include("payments.urls")),
    path("calendar/<str:token>.ics", tutor_feed, name="tutor-feed"),
    # Before django.contrib.auth's own: throttled, and the email goes through Celery.
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("bookings.web.urls")),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
