"""Requested times in the API (bookings/time_requests.py). Thin: parse, call, render.

Public: POST /api/tutors/{slug}/requests/ (a student proposes up to three times).
Tutor:  GET /api/tutor/requests/, POST /api/tutor/requests/{id}/accept/ and .../decline/.
The private offer itself is a web page (/offer/{token}/), held through the normal hold.
"""

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings import selectors, time_requests, validation
from bookings.models import MAX_REQUESTED_TIMES, TimeRequest, TimeRequestStatus

from .fields import (
    AwareDateTimeField,
    EmailAddressField,
    NameField,
    NotesField,
    StudentTimeZoneField,
    TextField,
)
from .serializers import ErrorSerializer
from .throttles import ScopedRate, client_address
from .tutor import IsTutor, TutorScoped

ERROR_400 = OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names them.")
ERROR_404 = OpenApiResponse(ErrorSerializer, description="No such tutor or request.")


class RequestsPerIPThrottle(ScopedRate):
    """Time requests per client address (THROTTLE_REQUESTS_PER_IP)."""

    scope = "requests_ip"


class TimeRequestCreateSerializer(serializers.Serializer):
    offering = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="One of the tutor's offerings (its id)."
    )
    times = serializers.ListField(
        child=AwareDateTimeField(days_ahead=validation.PLAN_DAYS_AHEAD),
        min_length=1,
        max_length=MAX_REQUESTED_TIMES,
        help_text="One to three proposed starts, ISO 8601 with an offset; each after the "
        "tutor's minimum notice and inside their booking horizon. The session lasts the "
        "offering's duration.",
    )
    student_name = NameField()
    student_email = EmailAddressField()
    note = NotesField()
    student_timezone = StudentTimeZoneField(
        help_text="The student's IANA zone, for the times in emails and on the offer page."
    )


class TimeRequestSerializer(serializers.Serializer):
    """A request as the student sees it after sending it (no link: that comes by email)."""

    id = serializers.IntegerField()
    tutor = serializers.CharField(source="tutor.slug")
    offering = serializers.IntegerField(source="offering_id")
    times = serializers.ListField(child=serializers.DateTimeField())
    status = serializers.ChoiceField(choices=TimeRequestStatus.choices)
    created_at = serializers.DateTimeField()


class TutorTimeRequestSerializer(TimeRequestSerializer):
    """A request as its tutor sees it."""

    student_name = serializers.CharField()
    student_email = serializers.EmailField()
    student_timezone = serializers.CharField()
    note = serializers.CharField()
    accepted_choice = serializers.IntegerField(allow_null=True)
    slot = serializers.IntegerField(source="slot_id", allow_null=True)
    offer_expires_at = serializers.DateTimeField(allow_null=True)
    decline_message = serializers.CharField()
    answered_at = serializers.DateTimeField(allow_null=True)


class AcceptSerializer(serializers.Serializer):
    choice = serializers.IntegerField(
        min_value=1, max_value=MAX_REQUESTED_TIMES, help_text="Which proposed time (1 to 3)."
    )


class DeclineSerializer(serializers.Serializer):
    message = TextField(
        multiline=True,
        max_length=time_requests.DECLINE_MESSAGE_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Emailed to the student.",
    )


class TutorRequestQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TimeRequestStatus.choices, required=False)


@extend_schema(
    tags=["public"],
    request=TimeRequestCreateSerializer,
    responses={
        201: TimeRequestSerializer,
        400: ERROR_400,
        404: ERROR_404,
        409: OpenApiResponse(ErrorSerializer, description="too_many_requests"),
        429: OpenApiResponse(ErrorSerializer, description="Too many requests from here."),
    },
)
class TimeRequestCreateView(APIView):
    """Propose up to three times the tutor has not listed; the tutor answers by email
    with a private link to hold and pay the accepted one, or declines."""

    authentication_classes: list = []
    throttle_classes = [RequestsPerIPThrottle]

    def post(self, request: Request, slug: str) -> Response:
        tutor = selectors.tutor_public(slug, with_offerings=False)
        data = TimeRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params: dict[str, Any] = dict(data.validated_data)
        created = time_requests.time_request_create(
            tutor=tutor,
            offering_id=params.pop("offering"),
            now=timezone.now(),
            client=client_address(request),
            **params,
        )
        return Response(TimeRequestSerializer(created).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["tutor"],
    parameters=[TutorRequestQuerySerializer],
    responses={200: TutorTimeRequestSerializer(many=True)},
)
class TutorRequestListView(TutorScoped):
    """Your students' time requests: unanswered first, then the answered, newest first."""

    permission_classes = [IsTutor]

    def get(self, request: Request) -> Response:
        query = TutorRequestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = time_requests.tutor_requests(
            tutor=self.tutor, status=query.validated_data.get("status")
        )[: settings.REST_FRAMEWORK["PAGE_SIZE"] * 4]
        return Response(TutorTimeRequestSerializer(rows, many=True).data)


def _answer(row: TimeRequest) -> Response:
    return Response(TutorTimeRequestSerializer(row).data)


@extend_schema(
    tags=["tutor"],
    request=AcceptSerializer,
    responses={
        200: TutorTimeRequestSerializer,
        400: ERROR_400,
        404: ERROR_404,
        409: OpenApiResponse(
            ErrorSerializer,
            description="time_unavailable (its `reason` says why: too_soon, booked, "
            "travel_buffer, tutor_busy...), slot_overlap, slot_blocked, request_answered.",
        ),
    },
)
class TutorRequestAcceptView(TutorScoped):
    """Accept one proposed time: a private slot is made and the student emailed a link
    to hold and pay it (valid REQUEST_OFFER_HOURS hours)."""

    permission_classes = [IsTutor]

    def post(self, request: Request, pk: int) -> Response:
        data = AcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = time_requests.time_request_accept(
            tutor=self.tutor,
            request_id=pk,
            choice=data.validated_data["choice"],
            now=timezone.now(),
        )
        return _answer(row)


@extend_schema(
    tags=["tutor"],
    request=DeclineSerializer,
    responses={
        200: TutorTimeRequestSerializer,
        400: ERROR_400,
        404: ERROR_404,
        409: OpenApiResponse(ErrorSerializer, description="request_answered"),
    },
)
class TutorRequestDeclineView(TutorScoped):
    """Decline, with a message the student is emailed."""

    permission_classes = [IsTutor]

    def post(self, request: Request, pk: int) -> Response:
        data = DeclineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = time_requests.time_request_decline(
            tutor=self.tutor,
            request_id=pk,
            message=data.validated_data["message"],
            now=timezone.now(),
        )
        return _answer(row)
