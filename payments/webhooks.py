"""Stripe events → payment services. An event is a trigger; the services decide.

Every event id is recorded once (a unique row), so a replay is recognised; the services
lock and check, so even two deliveries processed at the same moment confirm once.
"""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError

from bookings.models import Booking
from config.observability import redact

from . import services
from .models import Payment, Refund, RefundStatus, StripeEvent

logger = logging.getLogger(__name__)

# The events that say money arrived.
PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}

HANDLED = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "refund.updated",
    "refund.failed",
}


def _scrubbed(value: Any, key: str = "") -> Any:
    """The event as we keep it: our own URLs in it (the checkout's success_url carries
    the student's manage token) with their secrets redacted, everything else as sent."""
    if isinstance(value, dict):
        return {k: _scrubbed(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, key) for v in value]
    if isinstance(value, str) and key.endswith("url"):
        return redact(value)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(_text(value))
    except ValueError:
        return None


def _payment_for_session(obj: dict[str, Any]) -> Payment | None:
    """The payment whose own checkout this session is, or None.

    Matched by the session id we stored when we opened it. The one exception: a crash
    between Stripe creating our session and us storing its id leaves a payment without
    one; the session's metadata then names that payment's own (random) id, which only
    we put there.
    """
    session_id = _text(obj.get("id"))
    if not session_id:
        # Never look up by a missing id: filter(x=None) matches every row without one.
        return None
    payment = Payment.objects.filter(checkout_session_id=session_id).first()
    if payment is not None:
        return payment
    metadata = _metadata(obj)
    payment_id = _uuid(metadata.get("payment_id"))
    booking_id = _uuid(metadata.get("booking_id"))
    if payment_id is None or booking_id is None:
        return None
    adopted = Payment.objects.checkouts().filter(
        pk=payment_id, booking_id=booking_id, checkout_session_id__isnull=True
    )
    if adopted.update(checkout_session_id=session_id):
        return Payment.objects.get(pk=payment_id)
    return None


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _named_booking(obj: dict[str, Any]) -> uuid.UUID | None:
    """The booking a session says it pays for (metadata or client_reference_id)."""
    metadata = _metadata(obj)
    booking_id = _uuid(metadata.get("booking_id")) or _uuid(obj.get("client_reference_id"))
    if booking_id is None or not Booking.objects.filter(pk=booking_id).exists():
        return None
    return booking_id


def _intent_id(value: Any) -> str:
    if isinstance(value, dict):
        return _text(value.get("id"))
    return _text(value)


def _received(obj: dict[str, Any]) -> services.Money:
    amount = obj.get("amount_total")
    valid = isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0
    return services.Money(amount if valid else None, _text(obj.get("currency")) or None)


def _session_event(kind: str, obj: dict[str, Any], now: datetime) -> str:
    paid = obj.get("payment_status") == "paid"
    money_event = kind in PAID_EVENTS
    payment = _payment_for_session(obj)
    if payment is None:
        booking_id = _named_booking(obj) if money_event and paid else None
        session_id = _text(obj.get("id"))
        if booking_id is None or not session_id:
            logger.warning("stripe session %r is not one of our checkouts", session_id[:80])
            return "unknown session"
        # Money in our account for a booking, through a checkout that is not the one
        # we opened for it: it never confirms anything, and goes back.
        return services.payment_stray(
            booking_id=booking_id,
            session_id=session_id[:255],
            received=_received(obj),
            payment_intent=_intent_id(obj.get("payment_intent"))[:255],
            now=now,
        ).outcome
    if money_event:
        if not paid:
            return "awaiting asynchronous payment"
        return services.payment_succeeded(
            payment_id=payment.pk,
            now=now,
            received=_received(obj),
            payment_intent=_intent_id(obj.get("payment_intent"))[:255],
            source=kind,
        ).outcome
    if kind == "checkout.session.async_payment_failed":
        services.payment_failed(payment_id=payment.pk, now=now, reason="payment failed")
        return "failed"
    if kind == "checkout.session.expired":
        services.checkout_expired(payment_id=payment.pk, now=now)
        return "expired"
    return "ignored"


def _dispatch(event: dict[str, Any], now: datetime) -> str:
    kind = _text(event.get("type"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return "ignored: no object"
    if kind.startswith("checkout.session."):
        return _session_event(kind, obj, now)
    if kind == "charge.refunded":
        intent = _intent_id(obj.get("payment_intent"))
        refunded = obj.get("amount_refunded")
        if not intent or not isinstance(refunded, int) or isinstance(refunded, bool):
            return "unknown payment"  # a blank id would match every unpaid payment
        return services.payment_refunded_by_provider(
            payment_intent=intent, amount_refunded=refunded
        )
    if kind in ("refund.updated", "refund.failed"):
        refund_id = _text(obj.get("id"))
        refund = Refund.objects.filter(stripe_refund_id=refund_id).first() if refund_id else None
        if refund is None:
            return "unknown refund"
        status = services.refund_status(_text(obj.get("status")))
        if kind == "refund.failed":
            status = RefundStatus.FAILED
        services.refund_update(refund_id=refund.pk, status=status, stripe_refund_id=None)
        return f"refund {status}"
    return "ignored"


def handle_event(event: dict[str, Any], *, now: datetime) -> str:
    """Process one verified event once. Raises only when Stripe should retry."""
    if not isinstance(event, dict):
        return "ignored: not an event"
    event_id = _text(event.get("id"))[:255]
    kind = _text(event.get("type"))
    if not event_id:
        return "ignored: no id"
    try:
        record, _ = StripeEvent.objects.get_or_create(
            event_id=event_id, defaults={"type": kind[:100], "payload": _scrubbed(event)}
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
