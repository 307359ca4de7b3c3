"""/api/tutor/: a tutor manages their own offerings, availability and bookings.

Every queryset is filtered by the signed-in tutor, so another tutor's ids answer 404.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from bookings import selectors, services
from bookings.models import (
    Actor,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingStatus,
    Offering,
    Slot,
    Tutor,
)

from .serializers import (
    BlockSerializer,
    ErrorSerializer,
    OfferingSerializer,
    RuleSerializer,
    SlotCreateSerializer,
    TutorBookingQuerySerializer,
    TutorBookingSerializer,
    TutorProfileSerializer,
    TutorSlotQuerySerializer,
    TutorSlotSerializer,
)

CONFLICT = OpenApiResponse(ErrorSerializer, description="The current state forbids it.")


class IsTutor(permissions.IsAuthenticated):
    message = "Sign in with a tutor account."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return super().has_permission(request, view) and hasattr(request.user, "tutor")


class TutorScoped(APIView):
    permission_classes = [IsTutor]

    @property
    def tutor(self) -> Tutor:
        tutor = getattr(self.request.user, "tutor", None)
        if tutor is None:  # IsTutor already refused; this keeps type checkers honest.
            raise PermissionDenied()
        return tutor

    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()  # type: ignore[misc]
        if getattr(self, "swagger_fake_view", False):
            return context
        context["tutor"] = self.tutor
        return context


@extend_schema(tags=["tutor"])
class ProfileView(TutorScoped, APIView):
    """The signed-in tutor's own settings (notice, travel buffer, refund policy, ...)."""

    serializer_class = TutorProfileSerializer

    @extend_schema(responses=TutorProfileSerializer)
    def get(self, request: Request) -> Response:
        return Response(TutorProfileSerializer(self.tutor).data)

    @extend_schema(request=TutorProfileSerializer, responses=TutorProfileSerializer)
    def patch(self, request: Request) -> Response:
        serializer = TutorProfileSerializer(self.tutor, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tutor = services.tutor_save(
            tutor=self.tutor, now=timezone.now(), **serializer.validated_data
        )
        return Response(TutorProfileSerializer(tutor).data)

    def get_serializer_context(self) -> dict[str, Any]:
        return {"request": self.request}


@extend_schema(tags=["tutor"])
class FeedRotateView(TutorScoped, APIView):
    """A new secret calendar-feed URL; the old one stops working at once."""

    @extend_schema(request=None, responses=TutorProfileSerializer)
    def post(self, request: Request) -> Response:
        tutor = services.tutor_rotate_feed(tutor=self.tutor)
        return Response(TutorProfileSerializer(tutor).data)


@extend_schema(tags=["tutor"])
class OfferingViewSet(TutorScoped, viewsets.ModelViewSet):
    """Offerings. Deleting one that slots or bookings use only deactivates it."""

    queryset = Offering.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = OfferingSerializer

    def get_queryset(self) -> QuerySet[Offering]:
        return selectors.tutor_offerings(tutor=self.tutor).order_by("id")

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.offering_save(
            tutor=self.tutor, now=timezone.now(), **serializer.validated_data
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.offering_save(
            tutor=self.tutor,
            now=timezone.now(),
            offering=serializer.instance,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance: Offering) -> None:
        # Bookings and slots keep pointing at it: deleting means no longer offering it.
        services.offering_save(
            tutor=self.tutor, now=timezone.now(), offering=instance, is_active=False
        )


@extend_schema(tags=["tutor"])
class RuleViewSet(TutorScoped, viewsets.ModelViewSet):
    """Weekly availability rules; saving one re-materialises the tutor's slots."""

    queryset = AvailabilityRule.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = RuleSerializer

    def get_queryset(self) -> QuerySet[AvailabilityRule]:
        return selectors.tutor_rules(tutor=self.tutor)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.rule_save(
            tutor=self.tutor, now=timezone.now(), **serializer.validated_data
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.rule_save(
            tutor=self.tutor,
            rule=serializer.instance,
            now=timezone.now(),
            **serializer.validated_data,
        )

    def perform_destroy(self, instance: AvailabilityRule) -> None:
        services.rule_delete(rule=instance, now=timezone.now())


@extend_schema(tags=["tutor"])
class BlockViewSet(
    TutorScoped,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Blocked periods (vacations). Unbooked slots inside one are withdrawn."""

    queryset = BlockedPeriod.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = BlockSerializer

    def get_queryset(self) -> QuerySet[BlockedPeriod]:
        return selectors.tutor_blocks(tutor=self.tutor)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.block_create(
            tutor=self.tutor, now=timezone.now(), **serializer.validated_data
        )

    def perform_destroy(self, instance: BlockedPeriod) -> None:
        services.block_delete(block=instance, now=timezone.now())


@extend_schema_view(
    list=extend_schema(parameters=[TutorSlotQuerySerializer]),
    create=extend_schema(
        request=SlotCreateSerializer, responses={201: TutorSlotSerializer, 409: CONFLICT}
    ),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
)
@extend_schema(tags=["tutor"])
class SlotViewSet(
    TutorScoped,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your slots: list, add a one-off, delete or block an unbooked one."""

    queryset = Slot.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = TutorSlotSerializer

    def get_queryset(self) -> QuerySet[Slot]:
        if self.action != "list":
            return selectors.tutor_slot_rows(tutor=self.tutor, include_removed=True)
        query = TutorSlotQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        return selectors.tutor_slot_rows(
            tutor=self.tutor,
            include_removed=params["include_removed"],
            start_from=params.get("start_from"),
            start_to=params.get("start_to"),
            end_after=None if "start_from" in params else timezone.now(),
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        context["booked_slot_ids"] = selectors.tutor_booked_slot_ids(tutor=self.tutor)
        return context

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = SlotCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        slot = services.slot_create_one_off(
            tutor=self.tutor, now=timezone.now(), **data.validated_data
        )
        return Response(
            TutorSlotSerializer(slot, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    def perform_destroy(self, instance: Slot) -> None:
        services.slot_delete(slot=instance, now=timezone.now())

    @extend_schema(request=None, responses={201: BlockSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def block(self, request: Request, pk: str | None = None) -> Response:
        """Block this slot's time (kept blocked even if a rule covers it)."""
        block = services.slot_block(slot=self.get_object(), now=timezone.now())
        return Response(BlockSerializer(block).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(parameters=[TutorBookingQuerySerializer]))
@extend_schema(tags=["tutor"])
class BookingViewSet(TutorScoped, viewsets.ReadOnlyModelViewSet):
    """Your bookings, soonest first; cancel (always a full refund) or record the outcome."""

    queryset = Booking.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = TutorBookingSerializer

    def get_queryset(self) -> QuerySet[Booking]:
        if self.action != "list":
            return selectors.tutor_bookings(tutor=self.tutor)
        query = TutorBookingQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        return selectors.tutor_bookings(
            tutor=self.tutor,
            statuses=sorted(params.get("status") or []),
            start_from=params.get("start_from"),
            start_to=params.get("start_to"),
            mode=params.get("mode"),
        )

    def _answer(self, booking: Booking) -> Response:
        fresh = selectors.tutor_bookings(tutor=self.tutor).get(pk=booking.pk)
        return Response(TutorBookingSerializer(fresh).data)

    @extend_schema(request=None, responses={200: TutorBookingSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        services.booking_cancel(booking_id=booking.pk, actor=Actor.TUTOR, now=timezone.now())
        return self._answer(booking)

    @extend_schema(request=None, responses={200: TutorBookingSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        services.booking_mark_outcome(
            booking_id=booking.pk, status=BookingStatus.COMPLETED, now=timezone.now()
        )
        return self._answer(booking)

    @extend_schema(request=None, responses={200: TutorBookingSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        services.booking_mark_outcome(
            booking_id=booking.pk, status=BookingStatus.NO_SHOW, now=timezone.now()
        )
        return self._answer(booking)
