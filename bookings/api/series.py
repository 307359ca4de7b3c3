"""Weekly series in the public API: hold one, read it by its link, cancel what is left.
Thin, like bookings.api.public: parse, call bookings.series, render."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings import ics
from bookings import series as series_service
from bookings.models import MAX_SERIES_WEEKS, Actor, Booking, BookingSeries, Mode
from bookings.payment_port import payment_port

from .fields import (
    EmailAddressField,
    NameField,
    NotesField,
    StudentTimeZoneField,
)
from .public import ERRORS, conflict
from .serializers import ErrorSerializer, MoneySerializer, booking_dict, money
from .throttles import (
    HoldsPerIPThrottle,
    ManageLinkThrottle,
    client_address,
    hold_rate_check,
    hold_rate_record,
)


class SeriesCreateSerializer(serializers.Serializer):
    slot = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The first week's slot."
    )
    mode = serializers.ChoiceField(choices=Mode.choices)
    weeks = serializers.IntegerField(
        min_value=2,
        max_value=MAX_SERIES_WEEKS,
        help_text="How many weeks, the first included; the tutor's cap and the "
        "availability horizon may allow fewer (400 names the most).",
    )
    skip = serializers.ListField(
        child=serializers.DateField(),
        required=False,
        default=list,
        max_length=MAX_SERIES_WEEKS,
        help_text="Weeks to leave out, by their `date` in a 409's `conflicts`.",
    )
    student_name = NameField()
    student_email = EmailAddressField()
    notes = NotesField()
    student_timezone = StudentTimeZoneField()


class SeriesConflictSerializer(ErrorSerializer):
    conflicts = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='With code series_conflict only: each week that cannot be held: {"week", '
        '"date" (the tutor\'s local date, what `skip` takes), "start", "reason", "message"}.',
    )


class SeriesSerializer(serializers.Serializer):
    """Documents the shape series_dict() renders."""

    id = serializers.UUIDField()
    tutor = serializers.CharField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    offering = serializers.CharField()
    weeks = serializers.IntegerField(help_text="Weeks spanned, skipped ones included.")
    timezone = serializers.CharField(help_text="The zone whose wall clock repeats.")
    price = MoneySerializer(help_text="All the sessions held.")
    payment_url = serializers.URLField(allow_null=True)
    series_url = serializers.CharField(help_text="This series in the API (its private link).")
    invite_url = serializers.CharField(help_text="The series as one recurring calendar event.")
    sessions = serializers.ListField(child=serializers.DictField(), help_text="One booking a week.")


def series_dict(
    series: BookingSeries, sessions: list[Booking], *, now: datetime, payment_url: str | None
) -> dict[str, Any]:
    held = [b for b in sessions if b.is_active]
    if payment_url is None and any(b.status == "pending_payment" for b in sessions):
        payment_url = payment_port().checkout_url(sessions[0])
    base = settings.PUBLIC_BASE_URL
    return {
        "id": str(series.pk),
        "tutor": series.tutor.slug,
        "mode": series.mode,
        "offering": series.offering.title,
        "weeks": series.weeks,
        "timezone": series.timezone,
        "price": money(sum(b.price_amount for b in held), series.offering.currency),
        "payment_url": payment_url,
        "series_url": base + series.api_path,
        "invite_url": base + series.api_path + "invite.ics",
        "sessions": [
            {"week": b.series_week, **booking_dict(b, now=now, payment_url=None)} for b in sessions
        ],
    }


@extend_schema(
    tags=["public"],
    request=SeriesCreateSerializer,
    responses={
        201: SeriesSerializer,
        400: ERRORS[400],
        409: OpenApiResponse(
            SeriesConflictSerializer,
            description="series_conflict (nothing held; `conflicts` names the weeks), "
            "slot_unavailable, too_many_holds.",
        ),
        503: OpenApiResponse(ErrorSerializer, description="payment_unavailable: no checkout."),
    },
)
class SeriesCreateView(APIView):
    """Hold the same weekly time for several weeks, all or nothing, paid in one checkout."""

    authentication_classes: list = []
    throttle_classes = [HoldsPerIPThrottle]

    def post(self, request: Request) -> Response:
        data = SeriesCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        hold_rate_check(params["student_email"])
        now = timezone.now()
        hold = series_service.series_hold(
            slot_id=params.pop("slot"), now=now, client=client_address(request), **params
        )
        hold_rate_record(hold.series.student_email)
        # The held rows as written (slot, tutor and offering attached): no read back.
        body = series_dict(hold.series, hold.bookings, now=now, payment_url=hold.payment_url)
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["public"], responses={200: SeriesSerializer, 404: ERRORS[404]})
class SeriesDetailView(APIView):
    """The series behind its private link, week by week."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def get(self, request: Request, token: str) -> Response:
        series = series_service.series_by_token(token)
        sessions = series_service.series_sessions(series)
        return Response(series_dict(series, sessions, now=timezone.now(), payment_url=None))


@extend_schema(
    tags=["public"],
    request=None,
    responses={200: SeriesSerializer, 404: ERRORS[404], 409: conflict("not_cancellable")},
)
class SeriesCancelRestView(APIView):
    """Cancel every session that has not started, each refunded per the policy."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def post(self, request: Request, token: str) -> Response:
        series = series_service.series_by_token(token)
        now = timezone.now()
        series_service.series_cancel_rest(series=series, now=now, actor=Actor.STUDENT)
        sessions = series_service.series_sessions(series)
        return Response(series_dict(series, sessions, now=now, payment_url=None))


@extend_schema(
    tags=["public"],
    responses={(200, "text/calendar"): OpenApiTypes.STR, 404: ERRORS[404]},
    parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH)],
)
class SeriesInviteView(APIView):
    """The series as one recurring iCalendar event (RRULE, EXDATE for weeks that are
    not sessions, RECURRENCE-ID for moved ones)."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def get(self, request: Request, token: str) -> HttpResponse:
        series = series_service.series_by_token(token)
        sessions = series_service.series_sessions(series)
        if not any(ics.event_state(b) for b in sessions):
            raise ics.NotAnEvent()
        body = ics.series_calendar(series, sessions, stamp=timezone.now().astimezone(UTC))
        method = ics.series_method(sessions)
        response = HttpResponse(body, content_type=f"text/calendar; charset=utf-8; method={method}")
        response["Content-Disposition"] = 'attachment; filename="series.ics"'
        response["Cache-Control"] = "private, no-store"
        return response
