from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import public, requests, series, tutor

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("offerings", tutor.OfferingViewSet, basename="tutor-offering")
router.register("rules", tutor.RuleViewSet, basename="tutor-rule")
router.register("blocks", tutor.BlockViewSet, basename="tutor-block")
router.register("slots", tutor.SlotViewSet, basename="tutor-slot")
router.register("bookings", tutor.BookingViewSet, basename="tutor-booking")

urlpatterns = [
    path("tutors/", public.TutorListView.as_view(), name="tutor-list"),
    path("tutors/<slug:slug>/", public.TutorDetailView.as_view(), name="tutor-detail"),
    path("slots/", public.SlotListView.as_view(), name="slot-list"),
    path("bookings/", public.BookingCreateView.as_view(), name="booking-create"),
    path("bookings/<str:token>/", public.BookingDetailView.as_view(), name="booking-detail"),
    path("bookings/<str:token>/cancel/", public.BookingCancelView.as_view(), name="booking-cancel"),
    path(
        "bookings/<str:token>/reschedule/",
        public.BookingRescheduleView.as_view(),
        name="booking-reschedule",
    ),
    path(
        "bookings/<str:token>/invite.ics",
        public.BookingInviteView.as_view(),
        name="booking-invite",
    ),
    path("series/", series.SeriesCreateView.as_view(), name="series-create"),
    path("series/<str:token>/", series.SeriesDetailView.as_view(), name="series-detail"),
    path(
        "series/<str:token>/cancel-rest/",
        series.SeriesCancelRestView.as_view(),
        name="series-cancel-rest",
    ),
    path("series/<str:token>/invite.ics", series.SeriesInviteView.as_view(), name="series-invite"),
    # Requested times (bookings/api/requests.py).
    path(
        "tutors/<slug:slug>/requests/",
        requests.TimeRequestCreateView.as_view(),
        name="time-request-create",
    ),
    path("tutor/requests/", requests.TutorRequestListView.as_view(), name="tutor-requests"),
    path(
        "tutor/requests/<int:pk>/accept/",
        requests.TutorRequestAcceptView.as_view(),
        name="tutor-request-accept",
    ),
    path(
        "tutor/requests/<int:pk>/decline/",
        requests.TutorRequestDeclineView.as_view(),
        name="tutor-request-decline",
    ),
    path("tutor/me/", tutor.ProfileView.as_view(), name="tutor-profile"),
    path("tutor/me/feed/rotate/", tutor.FeedRotateView.as_view(), name="tutor-feed-rotate"),
    path("tutor/", include(router.urls)),
]
