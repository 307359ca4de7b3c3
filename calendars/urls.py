"""The tutor's calendars: the dashboard page (web_urls) and the API (api_urls).
config/urls.py mounts them at /tutor/calendars/ and /api/tutor/calendars/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api, views

app_name = "calendars"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("calendars", api.CalendarSourceViewSet, basename="tutor-calendar")

urlpatterns = [
    path("tutor/calendars/", views.calendars, name="tutor-calendars"),
    path("tutor/calendars/<int:pk>/", views.edit, name="tutor-calendar-edit"),
    path("tutor/calendars/<int:pk>/sync/", views.sync, name="tutor-calendar-sync"),
    path("tutor/calendars/<int:pk>/pause/", views.pause, name="tutor-calendar-pause"),
    path("tutor/calendars/<int:pk>/delete/", views.delete, name="tutor-calendar-delete"),
    path("api/tutor/", include(router.urls)),
]
