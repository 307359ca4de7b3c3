"""Stripe events → payment services. An event is a trigger; the services decide.

Every event id is recorded once (a unique row), so a replay is recognised; the services
lock and check, so even two deliveries processed at the same moment confirm once.
"""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from . import services
from .models import Payment, Refund, RefundStatus, StripeEvent

logger = logging.getLogger(__name__)

HANDLED = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "refund.updated",
    "refund.failed",
}


def _payment_for_session(obj: dict[str, Any]) -> Payment | None:
    session_id = obj.get("id")
    if not session_id:
        # Never look up by a missing id: filter(x=None) matches every row without one.
        return None
    payment = Payment.objects.filter(checkout_session_id=session_id).first()
    if payment is None:
        booking_id = (obj.get("metadata") or {}).get("booking_id") or obj.get("client_reference_id")
        if booking_id:
            try:
                booking_uuid = uuid.UUID(str(booking_id))
            except ValueError:
                return None  # not one of ours; a 500 would only make Stripe retry it
            payment = Payment.objects.filter(booking_id=booking_uuid).first()
            if payment is not None and not payment.checkout_session_id:
                Payment.objects.filter(pk=payment.pk).update(checkout_session_id=session_id)
    return payment


def _intent_id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id", ""))
    return str(value or "")


def _dispatch(event: dict[str, Any], now: datetime) -> str:
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind.startswith("checkout.session."):
        payment = _payment_for_session(obj)
        if payment is None:
            return "unknown session"
        if kind == "checkout.session.completed":
            if obj.get("payment_status") != "paid":
                return "awaiting asynchronous payment"
            return services.payment_succeeded(
                payment_id=payment.pk,
                now=now,
                payment_intent=_intent_id(obj.get("payment_intent")),
                source=kind,
            ).outcome
        if kind == "checkout.session.async_payment_succeeded":
            if obj.get("payment_status") != "paid":
                return "not paid"
            return services.payment_succeeded(
                payment_id=payment.pk,
                now=now,
                payment_intent=_intent_id(obj.get("payment_intent")),
                source=kind,
            ).outcome
        if kind == "checkout.session.async_payment_failed":
            services.payment_failed(payment_id=payment.pk, now=now, reason="payment failed")
            return "failed"
        if kind == "checkout.session.expired":
            services.checkout_expired(payment_id=payment.pk, now=now)
            return "expired"
    if kind == "charge.refunded":
        intent = _intent_id(obj.get("payment_intent"))
        refunded = int(obj.get("amount_refunded") or 0)
        if not intent:
            return "unknown payment"  # a blank id would match every unpaid payment
        with transaction.atomic():
            payment = Payment.objects.select_for_update().filter(payment_intent_id=intent).first()
            if payment is None:
                return "unknown payment"
            if refunded > payment.refunded_amount:
                payment.refunded_amount = min(refunded, payment.amount)
                payment.save(update_fields=["refunded_amount", "updated_at"])
        return "refund recorded"
    if kind in ("refund.updated", "refund.failed"):
        refund_id = obj.get("id")
        refund = Refund.objects.filter(stripe_refund_id=refund_id).first() if refund_id else None
        if refund is None:
            return "unknown refund"
        status = {
            "succeeded": RefundStatus.SUCCEEDED,
            "failed": RefundStatus.FAILED,
            "canceled": RefundStatus.FAILED,
        }.get(obj.get("status") or "", RefundStatus.PENDING)
        if kind == "refund.failed":
            status = RefundStatus.FAILED
        services.refund_update(refund_id=refund.pk, status=status, stripe_refund_id=None)
        return f"refund {status}"
    return "ignored"


def handle_event(event: dict[str, Any], *, now: datetime) -> str:
    """Process one verified event once. Raises only when Stripe should retry."""
    event_id = str(event.get("id") or "")
    kind = str(event.get("type") or "")
    if not event_id:
        return "ignored: no id"
    try:
        record, _ = StripeEvent.objects.get_or_create(
            event_id=event_id, defaults={"type": kind[:100], "payload": event}
        )
    except IntegrityError:
        record = StripeEvent.objects.get(event_id=event_id)
    if record.processed_at is not None:
        return "duplicate"
    outcome = _dispatch(event, now) if kind in HANDLED else "ignored"
    StripeEvent.objects.filter(pk=record.pk, processed_at__isnull=True).update(
        processed_at=now, outcome=outcome[:255]
    )
    logger.info("stripe event %s %s: %s", event_id, kind, outcome)
    return outcome
