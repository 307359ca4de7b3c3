from django.urls import path
from django.views.generic import RedirectView

from . import request_views, series_views, tutor_views, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon),
    path("t/<slug:slug>/", views.tutor_page, name="tutor"),
    path("t/<slug:slug>/book/", views.book, name="book"),
    path("bookings/<str:token>/", views.manage, name="manage"),
    path("bookings/<str:token>/cancel/", views.cancel, name="cancel"),
    path("bookings/<str:token>/reschedule/", views.reschedule, name="reschedule"),
    # Requested times (request_views.py).
    path("t/<slug:slug>/request/", request_views.request_time, name="time-request"),
    path("offer/<str:token>/", request_views.offer, name="offer"),
    path("tutor/requests/", request_views.tutor_requests, name="tutor-requests"),
    path(
        "tutor/requests/<int:pk>/accept/",
        request_views.tutor_request_accept,
        name="tutor-request-accept",
    ),
    path(
        "tutor/requests/<int:pk>/decline/",
        request_views.tutor_request_decline,
        name="tutor-request-decline",
    ),
    # Weekly series (series_views.py).
    path("t/<slug:slug>/series/", series_views.series_new, name="series-new"),
    path("series/<str:token>/", series_views.series_page, name="series"),
    path("series/<str:token>/cancel/", series_views.series_cancel, name="series-cancel"),
    path("tutor/", views.dashboard, name="tutor-dashboard"),
    path("tutor/bookings/<uuid:pk>/", views.tutor_booking, name="tutor-booking"),
    path("tutor/bookings/<uuid:pk>/move/", tutor_views.booking_move, name="tutor-booking-move"),
    path("tutor/availability/", views.availability, name="tutor-availability"),
    path("tutor/availability/rules/<int:pk>/", views.rule_edit, name="tutor-rule"),
    path("tutor/availability/rules/<int:pk>/delete/", views.rule_delete, name="tutor-rule-delete"),
    path("tutor/availability/blocks/", views.block_add, name="tutor-block-add"),
    path("tutor/availability/blocks/<int:pk>/", tutor_views.block_review, name="tutor-block"),
    path(
        "tutor/availability/blocks/<int:pk>/delete/",
        views.block_delete,
        name="tutor-block-delete",
    ),
    path("tutor/availability/slots/", views.slot_add, name="tutor-slot-add"),
    path("tutor/slots/", views.slots, name="tutor-slots"),
    path("tutor/slots/<int:pk>/delete/", views.slot_delete, name="tutor-slot-delete"),
    path("tutor/offerings/", views.offerings, name="tutor-offerings"),
    path("tutor/settings/", views.settings_page, name="tutor-settings"),
    path("tutor/settings/feed/rotate/", views.feed_rotate, name="tutor-feed-rotate"),
    path("tutor/offerings/<int:pk>/", views.offering_edit, name="tutor-offering"),
    # Where LoginView goes when no ?next= says otherwise (LOGIN_REDIRECT_URL's default).
    path("accounts/profile/", RedirectView.as_view(pattern_name="web:tutor-dashboard")),
]
