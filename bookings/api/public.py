"""The public API students and the web pages use. Thin: parse, call a service, render."""

from datetime import UTC, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings import conditional, ics, selectors, services
from bookings.models import Actor, Booking, BookingStatus, Tutor
from bookings.payment_port import payment_port

from .fields import parse_bound, parse_zone
from .serializers import (
    BookingCreateSerializer,
    BookingSerializer,
    ErrorSerializer,
    RescheduleSerializer,
    SlotListSerializer,
    SlotQuerySerializer,
    TutorSerializer,
    booking_dict,
    slot_dict,
)
from .throttles import (
    HoldsPerIPThrottle,
    ManageLinkThrottle,
    client_address,
    hold_rate_check,
    hold_rate_record,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names them."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown tutor, slot or booking."),
}


def conflict(codes: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=f"Conflict: {codes}.")


@extend_schema(tags=["public"])
class TutorListView(generics.ListAPIView):
    """Public tutor profiles with their offerings."""

    serializer_class = TutorSerializer
    authentication_classes: list = []

    def get_queryset(self) -> QuerySet[Tutor]:
        return selectors.tutors_public()


@extend_schema(tags=["public"], responses={200: TutorSerializer, 404: ERRORS[404]})
class TutorDetailView(APIView):
    """One tutor's public profile."""

    authentication_classes: list = []

    def get(self, request: Request, slug: str) -> Response:
        return Response(TutorSerializer(selectors.tutor_public(slug)).data)


@extend_schema(
    tags=["public"],
    parameters=[SlotQuerySerializer],
    responses={200: SlotListSerializer, 400: ERRORS[400], 404: ERRORS[404]},
)
class SlotListView(APIView):
    """Open slots in a bounded range (at most 62 days), times rendered in `tz`."""

    authentication_classes: list = []

    def get(self, request: Request) -> HttpResponse:
        query = SlotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        zone = parse_zone(params.get("tz") or "UTC")
        now = timezone.now()
        errors: dict[str, list[str]] = {}
        start = end = now
        try:
            start = parse_bound(params["start"], zone, end=False) if "start" in params else now
        except ValidationError as exc:
            errors["start"] = exc.detail  # type: ignore[assignment]
        try:
            end = (
                parse_bound(params["end"], zone, end=True)
                if "end" in params
                else start + timedelta(days=7)
            )
        except ValidationError as exc:
            errors["end"] = exc.detail  # type: ignore[assignment]
        if not errors and end <= start:
            errors["end"] = ["The end must be after the start."]
        if not errors and end - start > timedelta(days=settings.SLOT_QUERY_MAX_DAYS):
            errors["end"] = [f"The range can span at most {settings.SLOT_QUERY_MAX_DAYS} days."]
        if errors:
            raise ValidationError(errors)
        tutor = (
            selectors.tutor_public(params["tutor"], with_offerings=False)
            if params.get("tutor")
            else None
        )
        check = conditional.for_api(request, tutor=tutor, now=now) if tutor else None
        if check and (unchanged := check.not_modified(request)):
            return unchanged
        items = selectors.open_slots(
            start=start, end=end, now=now, tutor=tutor, mode=params.get("mode")
        )
        results = [slot_dict(item, zone) for item in items]
        response = Response(
            {
                "tz": str(zone),
                "start": start.astimezone(zone).isoformat(),
                "end": end.astimezone(zone).isoformat(),
                "count": len(results),
                "results": results,
            }
        )
        if check:  # a window from now with no end given moves with the clock
            moving = "start" not in params and "end" not in params
            starts = [item.slot.start for item in items]
            check.tag(response, starts=starts, window=end - start if moving else None)
        return response


def booking_response(
    booking: Booking, *, status_code: int = 200, payment_url: str | None = None
) -> Response:
    if payment_url is None and booking.status == BookingStatus.PENDING_PAYMENT:
        payment_url = payment_port().checkout_url(booking)
    return Response(
        booking_dict(booking, now=timezone.now(), payment_url=payment_url), status=status_code
    )


@extend_schema(
    tags=["public"],
    request=BookingCreateSerializer,
    responses={
        201: BookingSerializer,
        400: ERRORS[400],
        409: conflict("slot_unavailable (with a `reason`), too_many_holds"),
        503: OpenApiResponse(ErrorSerializer, description="payment_unavailable: no checkout."),
    },
)
class BookingCreateView(APIView):
    """Hold a slot for the student while they pay. 409 `slot_unavailable` if it is taken."""

    authentication_classes: list = []
    throttle_classes = [HoldsPerIPThrottle]

    def post(self, request: Request) -> Response:
        data = BookingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        hold_rate_check(params["student_email"])
        hold = services.booking_hold(
            slot_id=params.pop("slot"),
            now=timezone.now(),
            client=client_address(request),
            **params,
        )
        hold_rate_record(hold.booking.student_email)
        # hold.booking arrives with its slot, tutor and offering loaded: no refetch.
        return booking_response(
            hold.booking, status_code=status.HTTP_201_CREATED, payment_url=hold.payment_url
        )


@extend_schema(tags=["public"], responses={200: BookingSerializer, 404: ERRORS[404]})
class BookingDetailView(APIView):
    """The booking behind a manage token."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def get(self, request: Request, token: str) -> Response:
        return booking_response(selectors.booking_by_token(token))


@extend_schema(
    tags=["public"],
    request=None,
    responses={200: BookingSerializer, 404: ERRORS[404], 409: conflict("not_cancellable")},
)
class BookingCancelView(APIView):
    """Cancel; `refund` in the answer says what the policy gave back."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def post(self, request: Request, token: str) -> Response:
        booking = selectors.booking_by_token(token)
        result = services.booking_cancel(
            booking_id=booking.pk, actor=Actor.STUDENT, now=timezone.now()
        )
        # The service answers with the row it locked and changed, slot, tutor and
        # offering loaded: nothing to read again.
        return booking_response(result.booking)


@extend_schema(
    tags=["public"],
    request=RescheduleSerializer,
    responses={
        200: BookingSerializer,
        400: ERRORS[400],
        404: ERRORS[404],
        409: conflict("slot_unavailable, not_reschedulable, reschedule_window_closed"),
    },
)
class BookingRescheduleView(APIView):
    """Move a confirmed booking to another open slot of the same tutor and length."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def post(self, request: Request, token: str) -> Response:
        booking = selectors.booking_by_token(token)
        data = RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        moved = services.booking_reschedule(
            booking_id=booking.pk, slot_id=data.validated_data["slot"], now=timezone.now()
        )
        return booking_response(moved)  # as cancel: the service's row, fully loaded


@extend_schema(
    tags=["public"],
    responses={(200, "text/calendar"): OpenApiTypes.STR, 404: ERRORS[404]},
    parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH)],
)
class BookingInviteView(APIView):
    """The booking as an iCalendar invite (METHOD:CANCEL once cancelled)."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def get(self, request: Request, token: str) -> HttpResponse:
        booking = selectors.booking_by_token(token)
        body = ics.booking_calendar(booking, now=timezone.now().astimezone(UTC))
        response = HttpResponse(
            body, content_type=f"text/calendar; charset=utf-8; method={ics.method_for(booking)}"
        )
        response["Content-Disposition"] = 'attachment; filename="invite.ics"'
        response["Cache-Control"] = "private, no-store"
        return response
