"""Packages in the public API: buy one, read one by its link, book with a credit.
Thin, like bookings.api.public: parse, call packages.services, render."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings.api.fields import (
    EmailAddressField,
    NameField,
    NotesField,
    StudentTimeZoneField,
)
from bookings.api.public import ERRORS, conflict
from bookings.api.serializers import (
    BookingSerializer,
    ErrorSerializer,
    MoneySerializer,
    booking_dict,
    money,
)
from bookings.api.throttles import (
    HoldsPerIPThrottle,
    ManageLinkThrottle,
    client_address,
    hold_rate_check,
    hold_rate_record,
)

from . import selectors, services
from .models import EntryKind, Purchase


class BuySerializer(serializers.Serializer):
    student_name = NameField()
    student_email = EmailAddressField()


class BuyAnswerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    payment_url = serializers.URLField(help_text="The Stripe Checkout page to pay at.")


class EntrySerializer(serializers.Serializer):
    kind = serializers.CharField(help_text=" | ".join(EntryKind.values))
    credits = serializers.IntegerField(help_text="+N bought, -1 spent, +1 returned, -left expired.")
    at = serializers.DateTimeField()
    booking = serializers.UUIDField(allow_null=True)


class PurchaseSerializer(serializers.Serializer):
    """Documents the shape purchase_dict() renders."""

    id = serializers.UUIDField()
    tutor = serializers.CharField()
    offering = serializers.CharField()
    mode = serializers.CharField()
    sessions = serializers.IntegerField()
    price = MoneySerializer()
    paid = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)
    expired = serializers.BooleanField()
    balance = serializers.IntegerField(help_text="Credits that can still be spent.")
    entries = EntrySerializer(many=True)
    package_url = serializers.CharField(help_text="The student's package page (private link).")


class SpendSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    notes = NotesField()
    student_timezone = StudentTimeZoneField()


def purchase_dict(purchase: Purchase, *, now: datetime) -> dict[str, Any]:
    return {
        "id": str(purchase.pk),
        "tutor": purchase.tutor.slug,
        "offering": purchase.offering.title,
        "mode": purchase.offering.mode,
        "sessions": purchase.sessions,
        "price": money(purchase.price_amount, purchase.currency),
        "paid": purchase.paid_at is not None,
        "expires_at": purchase.expires_at.isoformat() if purchase.expires_at else None,
        "expired": purchase.expired(now),
        "balance": selectors.balance(purchase, now=now),
        "entries": [
            {
                "kind": e.kind,
                "credits": e.credits,
                "at": e.at.isoformat(),
                "booking": str(e.booking_id) if e.booking_id else None,
            }
            for e in selectors.history(purchase)
        ],
        "package_url": settings.PUBLIC_BASE_URL + purchase.path,
    }


@extend_schema(
    tags=["public"],
    request=BuySerializer,
    responses={
        201: BuyAnswerSerializer,
        400: ERRORS[400],
        404: ERRORS[404],
        503: OpenApiResponse(ErrorSerializer, description="payment_unavailable: no checkout."),
    },
)
class PackageBuyView(APIView):
    """Buy a tutor's package: answers with the checkout to pay at. The package link
    comes by email once the payment arrives."""

    authentication_classes: list = []
    throttle_classes = [HoldsPerIPThrottle]

    def post(self, request: Request, pk: int) -> Response:
        data = BuySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hold_rate_check(data.validated_data["student_email"])
        start = services.purchase_start(package_id=pk, now=timezone.now(), **data.validated_data)
        hold_rate_record(start.purchase.student_email)
        body = {"id": str(start.purchase.pk), "payment_url": start.payment_url}
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["public"], responses={200: PurchaseSerializer, 404: ERRORS[404]})
class PurchaseDetailView(APIView):
    """A package behind its private link: balance and history."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def get(self, request: Request, token: str) -> Response:
        purchase = selectors.purchase_by_token(token)
        return Response(purchase_dict(purchase, now=timezone.now()))


@extend_schema(
    tags=["public"],
    request=SpendSerializer,
    responses={
        201: OpenApiResponse(BookingSerializer, description="The booking, confirmed."),
        400: ERRORS[400],
        404: ERRORS[404],
        409: conflict("no_credit, not_paid, slot_unavailable, too_many_holds"),
        410: OpenApiResponse(ErrorSerializer, description="package_expired."),
    },
)
class PurchaseBookingView(APIView):
    """Book an open slot of the package's session type with one credit: confirmed at
    once, no payment."""

    authentication_classes: list = []
    throttle_classes = [ManageLinkThrottle]

    def post(self, request: Request, token: str) -> Response:
        purchase = selectors.purchase_by_token(token)
        data = SpendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        booking = services.purchase_book(
            purchase_id=purchase.pk,
            slot_id=data.validated_data["slot"],
            now=now,
            notes=data.validated_data["notes"],
            student_timezone=data.validated_data["student_timezone"],
            client=client_address(request),
        )
        return Response(booking_dict(booking, now=now, payment_url=None), status=201)
