"""Checkout, confirmation, refunds: the payment side of a booking's life.

A booking is confirmed only by money Stripe says arrived (a paid event or a paid session
retrieved from Stripe) or, in development without Stripe keys, by the simulated
checkout, which drives the very same payment_succeeded() as a webhook. Every function is
safe to repeat: the payment row is locked and its state checked first. Stripe calls
happen outside transactions.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse

from bookings import services as booking_services
from bookings.errors import ApplicationError, PaymentUnavailable, SlotUnavailable
from bookings.models import Actor, Booking, BookingStatus

from . import gateway
from .models import Payment, PaymentStatus, Provider, Refund, RefundStatus

logger = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires sooner than 30 minutes after creation.
STRIPE_MIN_SESSION = timedelta(minutes=30)


def _absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path


def simulated_checkout_allowed() -> bool:
    """Development only: local settings turn it on with DEBUG, production never does."""
    return settings.PAYMENTS_SIMULATED and not gateway.is_configured()


# --- checkout -------------------------------------------------------------------------------


def checkout_start(*, booking: Booking, now: datetime) -> Payment:
    """Open a checkout for a fresh hold. Raises PaymentUnavailable, leaving a failed row."""
    if gateway.is_configured():
        provider = Provider.STRIPE
    elif simulated_checkout_allowed():
        provider = Provider.SIMULATED
    else:
        raise PaymentUnavailable("Payments are not configured on this server.")
    payment, _ = Payment.objects.get_or_create(
        booking=booking,
        defaults={"provider": provider, "amount": booking.price_amount, "currency": booking.currency},
    )
    if payment.checkout_url:
        return payment
    if provider == Provider.SIMULATED:
        payment.checkout_url = _absolute(reverse("payments:simulated", args=[payment.pk]))
        payment.save(update_fields=["checkout_url", "updated_at"])
        return payment

    assert booking.hold_expires_at is not None
    # The hold lasts at least Stripe's minimum, counted from the session's creation.
    expires_at = max(booking.hold_expires_at, now + STRIPE_MIN_SESSION + timedelta(seconds=30))
    token = booking.manage_token
    try:
        session = gateway.create_checkout_session(
            booking_id=str(booking.pk),
            amount=booking.price_amount,
            currency=booking.currency,
            product_name=f"{booking.offering.title} with {booking.tutor.display_name}",
            description=f"{booking.slot.start:%Y-%m-%d %H:%M} UTC, {booking.get_mode_display()}",
            customer_email=booking.student_email,
            expires_at=expires_at,
            success_url=_absolute(reverse("payments:return", args=[token]))
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=_absolute(reverse("payments:return", args=[token])) + "?cancelled=1",
        )
    except gateway.GatewayError as exc:
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED, last_error=str(exc)[:2000]
        )
        raise PaymentUnavailable(
            "The payment service is not answering. Nothing was booked; please try again.",
            status=503 if exc.retryable else 502,
        ) from exc
    if session.url is None:
        raise PaymentUnavailable("The payment service sent no checkout page.", status=502)
    if expires_at > booking.hold_expires_at:
        Booking.objects.filter(pk=booking.pk).update(hold_expires_at=expires_at)
        booking.hold_expires_at = expires_at
    payment.checkout_session_id = session.id
    payment.checkout_url = session.url
    payment.save(update_fields=["checkout_session_id", "checkout_url", "updated_at"])
    return payment


def checkout_abandon(*, booking: Booking) -> None:
    """The hold is over: close the Stripe session so it cannot take money any more.

    Best effort: if this fails, a late payment is still caught by the late-money rule.
    """
    payment = Payment.objects.filter(booking=booking, status=PaymentStatus.OPEN).first()
    if payment is None:
        return
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.OPEN).update(
        status=PaymentStatus.EXPIRED
    )
    if payment.provider == Provider.STRIPE and payment.checkout_session_id:
        try:
            gateway.expire_checkout_session(payment.checkout_session_id)
        except gateway.GatewayError as exc:
            logger.info("could not expire session %s: %s", payment.checkout_session_id, exc)


# --- money arrived --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    payment: Payment
    outcome: str  # confirmed | already_paid | refunded_late


def payment_succeeded(
    *, payment_id: uuid.UUID | str, now: datetime, payment_intent: str = "", source: str
) -> Settlement:
    """Money arrived for this payment: confirm its booking, exactly once.

    If the booking can no longer be had (its hold expired and the slot was taken, or
    it was cancelled), the money goes back in full, automatically.
    """
    refund_needed = False
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("booking").get(pk=payment_id)
        if payment.status == PaymentStatus.PAID:
            return Settlement(payment, "already_paid")
        payment.status = PaymentStatus.PAID
        payment.paid_at = now
        payment.payment_intent_id = payment_intent or payment.payment_intent_id
        payment.save(update_fields=["status", "paid_at", "payment_intent_id", "updated_at"])
        try:
            booking_services.booking_confirm(
                booking_id=payment.booking_id,
                now=now,
                reason=f"paid ({source})",
                data={"payment": str(payment.pk), "payment_intent": payment.payment_intent_id},
            )
        except SlotUnavailable:
            refund_needed = True
        except ApplicationError:
            # Cancelled while the student was paying: the money cannot buy anything.
            refund_needed = True
    if refund_needed:
        logger.warning("late payment %s for booking %s: refunding", payment.pk, payment.booking_id)
        refund_create(payment=payment, amount=payment.amount, reason="slot_unavailable")
        return Settlement(payment, "refunded_late")
    return Settlement(payment, "confirmed")


def payment_failed(*, payment_id: uuid.UUID | str, now: datetime, reason: str) -> None:
    """An asynchronous payment method failed: the hold is released."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.OPEN:
            return
        payment.status = PaymentStatus.FAILED
        payment.last_error = reason
        payment.save(update_fields=["status", "last_error", "updated_at"])
    booking_services.booking_release(booking_id=payment.booking_id, reason=reason, now=now)


def checkout_expired(*, payment_id: uuid.UUID | str, now: datetime) -> None:
    """Stripe closed the session unpaid: release the hold. Never undoes a payment."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.OPEN:
            return
        payment.status = PaymentStatus.EXPIRED
        payment.save(update_fields=["status", "updated_at"])
    booking_services.booking_expire(booking_id=payment.booking_id, now=now, force=True)


def settle_from_session(*, payment: Payment, session: gateway.CheckoutSession, now: datetime) -> str:
    """Apply what Stripe says about a session (webhook, return page, reconciliation)."""
    if session.status == "complete" and session.payment_status == "paid":
        return payment_succeeded(
            payment_id=payment.pk,
            now=now,
            payment_intent=session.payment_intent or "",
            source="checkout session",
        ).outcome
    if session.status == "expired":
        checkout_expired(payment_id=payment.pk, now=now)
        return "expired"
    return "unpaid"


def payment_refresh(*, payment: Payment, now: datetime) -> str:
    """Ask Stripe about an open checkout and settle it (return page, reconciliation)."""
    if payment.provider != Provider.STRIPE or not payment.checkout_session_id:
        return "not_stripe"
    if payment.status != PaymentStatus.OPEN:
        return payment.status
    try:
        session = gateway.retrieve_checkout_session(payment.checkout_session_id)
    except gateway.GatewayError:
        return "unknown"
    return settle_from_session(payment=payment, session=session, now=now)


def payments_reconcile(*, now: datetime, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Find open checkouts whose webhook may never have come, and settle them from Stripe.

    Looks at open Stripe payments created more than `older_than` ago (younger ones are
    still being paid for) whose booking is held or whose hold expired recently.
    """
    candidates = Payment.objects.filter(
        provider=Provider.STRIPE,
        status=PaymentStatus.OPEN,
        created_at__lte=now - older_than,
        created_at__gte=now - timedelta(days=2),
        checkout_session_id__isnull=False,
    ).select_related("booking")
    settled = 0
    for payment in candidates[:200]:
        if payment_refresh(payment=payment, now=now) in ("confirmed", "refunded_late", "expired"):
            settled += 1
    return settled


# --- refunds --------------------------------------------------------------------------------


def refund_create(*, payment: Payment, amount: int, reason: str) -> Refund | None:
    """Give back `amount` of a paid payment. The same (payment, reason) refunds once."""
    key = f"refund-{payment.pk}-{reason}"
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        existing = Refund.objects.filter(idempotency_key=key).first()
        if existing is not None:
            refund = existing
        else:
            if payment.status != PaymentStatus.PAID:
                return None
            amount = min(amount, payment.amount - payment.refunded_amount)
            if amount <= 0:
                return None
            refund = Refund.objects.create(
                payment=payment, amount=amount, reason=reason, idempotency_key=key
            )
    if refund.status == RefundStatus.PENDING:
        refund_send(refund_id=refund.pk)
        refund.refresh_from_db()
    return refund


def refund_send(*, refund_id: int) -> None:
    """Ask Stripe for a pending refund (again). Its idempotency key makes repeats safe."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    payment = refund.payment
    if payment.provider == Provider.SIMULATED:
        refund_update(refund_id=refund.pk, status=RefundStatus.SUCCEEDED, stripe_refund_id=None)
        return
    try:
        result = gateway.create_refund(
            payment_intent=payment.payment_intent_id,
            amount=refund.amount,
            idempotency_key=refund.idempotency_key,
            booking_id=str(payment.booking_id),
        )
    except gateway.GatewayError as exc:
        Refund.objects.filter(pk=refund.pk).update(last_error=str(exc)[:2000])
        if not exc.retryable:
            refund_update(refund_id=refund.pk, status=RefundStatus.FAILED, stripe_refund_id=None)
        return
    status = {
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.FAILED,
    }.get(result.status or "", RefundStatus.PENDING)
    refund_update(refund_id=refund.pk, status=status, stripe_refund_id=result.id)


def refund_update(*, refund_id: int, status: str, stripe_refund_id: str | None) -> None:
    """Record a refund's state; the payment's refunded amount counts succeeded ones."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        if stripe_refund_id and not refund.stripe_refund_id:
            refund.stripe_refund_id = stripe_refund_id
        was = refund.status
        if was != RefundStatus.SUCCEEDED:  # a succeeded refund stays succeeded
            refund.status = status
        refund.save(update_fields=["status", "stripe_refund_id", "updated_at"])
        if was != RefundStatus.SUCCEEDED and refund.status == RefundStatus.SUCCEEDED:
            payment.refunded_amount = min(payment.amount, payment.refunded_amount + refund.amount)
            payment.save(update_fields=["refunded_amount", "updated_at"])


def refunds_retry(*, now: datetime, older_than: timedelta = timedelta(minutes=1)) -> int:
    """The periodic retry of refunds Stripe has not taken yet (outage, timeout)."""
    pending = Refund.objects.filter(
        status=RefundStatus.PENDING, stripe_refund_id__isnull=True, updated_at__lte=now - older_than
    ).values_list("pk", flat=True)
    count = 0
    for pk in list(pending[:100]):
        refund_send(refund_id=pk)
        count += 1
    return count


def booking_refund(*, booking: Booking, amount: int, reason: str) -> Refund | None:
    payment = Payment.objects.filter(booking=booking, status=PaymentStatus.PAID).first()
    if payment is None:
        logger.info("no paid payment for booking %s: nothing to refund", booking.pk)
        return None
    return refund_create(payment=payment, amount=amount, reason=reason)


def simulated_pay(*, payment: Payment, now: datetime) -> Settlement:
    if payment.provider != Provider.SIMULATED:
        raise ApplicationError("not_simulated", "This is not a simulated checkout.", status=404)
    return payment_succeeded(payment_id=payment.pk, now=now, source="simulated checkout")


def simulated_cancel(*, payment: Payment, now: datetime) -> None:
    if payment.provider != Provider.SIMULATED:
        raise ApplicationError("not_simulated", "This is not a simulated checkout.", status=404)
    if payment.booking.status == BookingStatus.PENDING_PAYMENT:
        booking_services.booking_cancel(
            booking_id=payment.booking_id, actor=Actor.STUDENT, now=now, reason="checkout cancelled"
        )
