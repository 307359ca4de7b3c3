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
from typing import NoReturn

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse

from bookings import series as booking_series
from bookings import services as booking_services
from bookings.errors import ApplicationError, PaymentUnavailable, SlotUnavailable
from bookings.models import Actor, Booking, BookingId, BookingStatus

from . import gateway
from .models import Payment, PaymentKind, PaymentStatus, Provider, Refund, RefundStatus
from .purchase_port import purchase_port

logger = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires sooner than 30 minutes after creation.
STRIPE_MIN_SESSION = timedelta(minutes=30)


def _absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path


def simulated_checkout_allowed() -> bool:
    """Development only: local settings turn it on with DEBUG, production never does."""
    return settings.PAYMENTS_SIMULATED and not gateway.is_configured()


# --- checkout -------------------------------------------------------------------------------


def _provider() -> str:
    if gateway.is_configured():
        return Provider.STRIPE
    if simulated_checkout_allowed():
        return Provider.SIMULATED
    raise PaymentUnavailable("Payments are not configured on this server.")


def checkout_open(*, booking: Booking, series_bookings: list[Booking] | None = None) -> Payment:
    """Record the payment a fresh hold expects, inside the hold's own transaction.

    One INSERT, no network: the simulated checkout's URL is known at once (so a
    development hold needs nothing more); a Stripe payment gets its session from
    checkout_start() after the commit. A weekly series (`series_bookings`, `booking`
    the first of them) has one payment for the price of all its sessions.
    """
    payment = Payment(
        booking=booking,
        series_id=booking.series_id if series_bookings else None,
        provider=_provider(),
        amount=sum(b.price_amount for b in series_bookings or [booking]),
        currency=booking.currency,
    )
    if payment.provider == Provider.SIMULATED:
        payment.checkout_url = _absolute(reverse("payments:simulated", args=[payment.pk]))
    payment.save(force_insert=True)
    return payment


def _fail_without_page(payment: Payment, session: gateway.CheckoutSession) -> NoReturn:
    """Stripe made a session without a URL: nobody can pay without a page. The payment
    fails, keeping the session's id so any event for it still finds us."""
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.FAILED,
        checkout_session_id=session.id,
        last_error="Stripe sent no checkout URL.",
    )
    raise PaymentUnavailable("The payment service sent no checkout page.", status=502)


def checkout_start(*, booking: Booking, now: datetime) -> Payment:
    """Create the Stripe session for the payment checkout_open() recorded with the hold.

    Raises PaymentUnavailable, leaving the payment failed. Safe to repeat: a payment
    that already has its page is returned as it is.
    """
    payment = Payment.objects.checkouts().get(booking=booking)
    if payment.checkout_url:
        return payment

    if booking.hold_expires_at is None:  # only a fresh hold (which has one) gets here
        raise ApplicationError("not_held", "Only a held booking can be paid for.", status=409)
    # The hold lasts at least Stripe's minimum, counted from the session's creation (a
    # little margin for the request's own time), and ends on the whole second Stripe
    # takes: hold and session end at the same instant.
    expires_at = max(booking.hold_expires_at, now + STRIPE_MIN_SESSION + timedelta(seconds=30))
    if expires_at.microsecond:
        expires_at = expires_at.replace(microsecond=0) + timedelta(seconds=1)
    token = booking.manage_token
    quantity = payment.amount // booking.price_amount if payment.series_id else 1
    product = f"{booking.offering.title} with {booking.tutor.display_name}"
    when = f"{booking.slot.start:%Y-%m-%d %H:%M} UTC"
    if payment.series_id:
        product = f"Weekly: {product}"
        when = f"{quantity} weekly sessions from {when}"
    try:
        session = gateway.create_checkout_session(
            booking_id=str(booking.pk),
            payment_id=str(payment.pk),
            amount=booking.price_amount,
            quantity=quantity,
            currency=booking.currency,
            product_name=product,
            description=f"{when}, {booking.get_mode_display()}",
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
        if exc.retryable:
            raise PaymentUnavailable(
                "The payment service is not answering. Nothing was booked; please try again.",
                status=503,
            ) from exc
        raise PaymentUnavailable(
            "The payment service refused to open a checkout. Nothing was booked.", status=502
        ) from exc
    if session.url is None:
        _fail_without_page(payment, session)
    if expires_at != booking.hold_expires_at:
        # Only a hold still waiting: a very fast webhook may have confirmed it already.
        held = Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT)
        if payment.series_id:
            held = held.filter(series_id=payment.series_id)
        else:
            held = held.filter(pk=booking.pk)
        held.update(hold_expires_at=expires_at)
        booking.hold_expires_at = expires_at
    payment.checkout_session_id = session.id
    payment.checkout_url = session.url
    payment.save(update_fields=["checkout_session_id", "checkout_url", "updated_at"])
    return payment


def checkout_abandon(*, booking_id: BookingId, now: datetime) -> None:
    """The hold is over: close the Stripe session so it cannot take money any more.

    The payment is marked expired only once Stripe says the session is closed. If
    Stripe cannot be reached, it stays open and reconciliation asks again later. If
    Stripe refuses because the session is no longer open, the student most likely paid
    a moment ago and the webhook is still on its way (or lost): settle from Stripe's
    own answer at once, so late money confirms or is refunded without waiting.
    """
    # A series' one checkout hangs on its first session, but any session may be the
    # last one dropped: find it through the series too.
    series_id = Booking.objects.filter(pk=booking_id).values_list("series_id", flat=True).first()
    owner = (
        Q(booking_id=booking_id) | Q(series_id=series_id) if series_id else Q(booking_id=booking_id)
    )
    payment = Payment.objects.checkouts().filter(owner, status=PaymentStatus.OPEN).first()
    if payment is None:
        return
    if (
        payment.series_id
        and Booking.objects.filter(
            series_id=payment.series_id, status=BookingStatus.PENDING_PAYMENT
        ).exists()
    ):
        # One session of a series was dropped while the others still wait for the
        # same checkout: it stays open for them (money for the dropped one goes back).
        return
    if payment.provider != Provider.STRIPE or not payment.checkout_session_id:
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.OPEN).update(
            status=PaymentStatus.EXPIRED
        )
        return
    try:
        session = gateway.expire_checkout_session(payment.checkout_session_id)
    except gateway.GatewayError as exc:
        logger.info("could not expire session %s: %s", payment.checkout_session_id, exc)
        if not exc.retryable:
            payment_refresh(payment=payment, now=now)
        return
    settle_from_session(payment=payment, session=session, now=now)


# --- money arrived --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    payment: Payment
    outcome: str  # confirmed | already_paid | already_refused | refunded_late | refused


@dataclass(frozen=True)
class Money:
    """What the provider says was paid: amount in minor units and ISO currency."""

    amount: int | None
    currency: str | None

    def why_not(self, payment: Payment) -> str:
        """Why this money cannot pay for `payment`'s booking, or "" when it can."""
        if (self.currency or "").lower() != payment.currency:
            return "wrong_currency"
        if self.amount != payment.amount:
            return "wrong_amount"
        return ""


def payment_succeeded(
    *,
    payment_id: uuid.UUID | str,
    now: datetime,
    received: Money,
    payment_intent: str = "",
    source: str,
) -> Settlement:
    """Money arrived for this payment: confirm its booking, exactly once.

    Only the full price in the booking's currency confirms it; other money is refused
    and refunded in full, and student and tutor are told. If the booking can no longer
    be had (its hold expired and the slot was taken or closed, or it was cancelled),
    the money goes back in full, automatically. A weekly series' payment confirms all
    its sessions; a session that can no longer be had gets its own price back.
    """
    refunds: list[Refund | None] = []
    with transaction.atomic():
        # Only the payment's own row in FOR UPDATE: a purchase's payment has no booking,
        # which makes the join an outer one, and PostgreSQL locks no nullable side. The
        # booking is locked right after, as the join used to.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("booking")
            .get(pk=payment_id)
        )
        if payment.booking_id is not None:
            list(
                Booking.objects.select_for_update().filter(pk=payment.booking_id).values_list("pk")
            )
        if payment.status == PaymentStatus.PAID:
            return Settlement(payment, "already_paid")
        if payment.status == PaymentStatus.REFUSED:
            return Settlement(payment, "already_refused")
        refused = received.why_not(payment) or (
            "not_its_checkout" if payment.kind == PaymentKind.STRAY else ""
        )
        payment.status = PaymentStatus.REFUSED if refused else PaymentStatus.PAID
        payment.paid_at = now
        payment.received_amount = received.amount or 0
        payment.received_currency = (received.currency or "").lower()[:3]
        payment.payment_intent_id = payment_intent or payment.payment_intent_id
        payment.save(
            update_fields=[
                "status",
                "paid_at",
                "received_amount",
                "received_currency",
                "payment_intent_id",
                "updated_at",
            ]
        )
        why = refused
        lost: list[tuple[Booking, str]] = []
        if payment.kind == PaymentKind.PURCHASE:
            # Bought ahead of any booking (a package): its seller grants what was paid
            # for, in this transaction. Refused money is refunded below like any other.
            if not refused:
                purchase_port().purchase_paid(payment, now=now)
        elif refused and payment.series_id:
            booking_series.series_payment_refused(
                series_id=payment.series_id,
                anchor_id=payment.booking_id,
                amount=payment.paid_amount,
                currency=payment.received_currency,
                why=refused,
                now=now,
            )
        elif refused:
            assert payment.booking_id is not None  # noqa: S101 - only purchases have none
            booking_services.booking_payment_refused(
                booking_id=payment.booking_id,
                amount=payment.paid_amount,
                currency=payment.received_currency,
                why=refused,
                own_checkout=payment.kind == PaymentKind.CHECKOUT,
                now=now,
            )
        elif payment.series_id:
            assert payment.booking_id is not None  # noqa: S101 - only purchases have none
            lost = booking_series.series_confirm(
                series_id=payment.series_id,
                now=now,
                reason=f"paid ({source})",
                data={"payment": str(payment.pk), "payment_intent": payment.payment_intent_id},
            )
        else:
            assert payment.booking is not None  # noqa: S101 - only purchases have none
            try:
                booking_services.booking_confirm(
                    booking_id=payment.booking.pk,
                    now=now,
                    reason=f"paid ({source})",
                    data={"payment": str(payment.pk), "payment_intent": payment.payment_intent_id},
                )
            except SlotUnavailable:
                why = "taken"
            except ApplicationError:
                # Cancelled while the student was paying: the money cannot buy anything.
                why = "cancelled"
            if why:
                lost = [(payment.booking, why)]
        if payment.series_id:
            # The student is told in the same transaction that records the money: once
            # for all the weeks this payment was for and could not have.
            booking_series.series_late_payment_refunded(lost=lost, now=now)
        for booking, lost_why in lost:
            if not payment.series_id:
                booking_services.booking_late_payment_refunded(
                    booking_id=booking.pk, amount=booking.price_amount, why=lost_why, now=now
                )
            # Owed in this transaction, paid after it: a crash in between leaves a
            # pending refund for refunds_retry, never money kept for nothing.
            refunds.append(
                refund_owe(
                    payment=payment,
                    amount=booking.price_amount if payment.series_id else payment.paid_amount,
                    reason="slot_unavailable",
                    booking=booking if payment.series_id else None,
                )
            )
        if refused:
            refunds.append(
                refund_owe(
                    payment=payment, amount=payment.paid_amount, reason=f"refused: {refused}"
                )
            )
    for refund in refunds:
        if refund is not None and refund.status == RefundStatus.PENDING:
            refund_send(refund_id=refund.pk)
    if refused:
        logger.warning("payment %s refused and refunded: %s", payment.pk, refused)
        return Settlement(payment, "refused")
    if lost:
        logger.warning("payment %s: %d session(s) refunded, no longer free", payment.pk, len(lost))
    everything_lost = bool(lost) and (
        not payment.series_id
        or not Booking.objects.filter(
            series_id=payment.series_id, status=BookingStatus.CONFIRMED
        ).exists()
    )
    return Settlement(payment, "refunded_late" if everything_lost else "confirmed")


def payment_stray(
    *,
    booking_id: BookingId,
    session_id: str,
    received: Money,
    payment_intent: str,
    now: datetime,
) -> Settlement:
    """A paid checkout that names a booking but is not the checkout we opened for it.

    It can never confirm anything: the money is recorded against the booking it names
    (so its refund has a row) and refunded in full. The session id is unique, so a
    replay finds the same row and changes nothing.
    """
    with transaction.atomic():
        payment = Payment.objects.filter(checkout_session_id=session_id).first()
        if payment is None:
            booking = Booking.objects.get(pk=booking_id)
            payment = Payment.objects.create(
                booking=booking,
                kind=PaymentKind.STRAY,
                provider=Provider.STRIPE,
                amount=booking.price_amount,
                currency=booking.currency,
                checkout_session_id=session_id,
            )
    return payment_succeeded(
        payment_id=payment.pk,
        now=now,
        received=received,
        payment_intent=payment_intent,
        source="stray checkout",
    )


def payment_failed(*, payment_id: uuid.UUID | str, now: datetime, reason: str) -> None:
    """An asynchronous payment method failed: the hold is released."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.OPEN:
            return
        payment.status = PaymentStatus.FAILED
        payment.last_error = reason
        payment.save(update_fields=["status", "last_error", "updated_at"])
    if payment.booking_id is None:
        return  # a purchase: nothing was held for it
    if payment.series_id:
        booking_series.series_release(
            series_id=payment.series_id, reason=reason, now=now, expire=False
        )
        return
    booking_services.booking_release(booking_id=payment.booking_id, reason=reason, now=now)


def checkout_expired(*, payment_id: uuid.UUID | str, now: datetime) -> None:
    """Stripe closed the session unpaid: release the hold. Never undoes a payment."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.OPEN:
            return
        payment.status = PaymentStatus.EXPIRED
        payment.save(update_fields=["status", "updated_at"])
    if payment.booking_id is None:
        return  # a purchase: nothing was held for it
    if payment.series_id:
        booking_series.series_release(
            series_id=payment.series_id, reason="checkout expired", now=now, expire=True
        )
        return
    booking_services.booking_expire(booking_id=payment.booking_id, now=now, force=True)


def settle_from_session(
    *, payment: Payment, session: gateway.CheckoutSession, now: datetime
) -> str:
    """Apply what Stripe says about a session (webhook, return page, reconciliation)."""
    if session.id != payment.checkout_session_id:
        # Only the payment's own session speaks for it.
        return "not_its_session"
    if session.status == "complete" and session.payment_status == "paid":
        return payment_succeeded(
            payment_id=payment.pk,
            now=now,
            received=Money(session.amount_total, session.currency),
            payment_intent=session.payment_intent or "",
            source="checkout session",
        ).outcome
    if session.status == "expired":
        checkout_expired(payment_id=payment.pk, now=now)
        return "expired"
    return "unpaid"


def payment_refresh(*, payment: Payment, now: datetime) -> str:
    """Ask Stripe about a checkout and settle it (return page, reconciliation).

    Open checkouts, and expired ones too: our hold may have run out while the student
    was paying, and that late money still has to confirm or be refunded.
    """
    if payment.provider != Provider.STRIPE or not payment.checkout_session_id:
        return "not_stripe"
    if payment.status not in (PaymentStatus.OPEN, PaymentStatus.EXPIRED):
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


def refund_owe(
    *, payment: Payment, amount: int, reason: str, booking: Booking | None = None
) -> Refund | None:
    """Record that `amount` of a paid payment goes back, without asking Stripe yet.

    Called inside the transaction of the change that makes the refund due, so the debt
    is stored exactly when the change is: if we crash before refund_send(), the retry
    task still finds it. The same (payment, reason) is owed once.
    """
    # A series' payment is refunded session by session: each session's refund is its own.
    key = (
        f"refund-{payment.pk}-{booking.pk}-{reason}" if booking else f"refund-{payment.pk}-{reason}"
    )
    # No savepoint: nothing in here is caught and carried on from, and inside the
    # caller's transaction (where this runs) a savepoint would cost two round trips.
    with transaction.atomic(savepoint=False):
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        existing = Refund.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        if payment.status not in (PaymentStatus.PAID, PaymentStatus.REFUSED):
            return None
        amount = min(amount, payment.paid_amount - payment.refunded_amount)
        if amount <= 0:
            return None
        return Refund.objects.create(
            payment=payment, booking=booking, amount=amount, reason=reason, idempotency_key=key
        )


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
            booking_id=str(payment.booking_id or payment.pk),
        )
    except gateway.GatewayError as exc:
        Refund.objects.filter(pk=refund.pk).update(last_error=str(exc)[:2000])
        if not exc.retryable:
            refund_update(refund_id=refund.pk, status=RefundStatus.FAILED, stripe_refund_id=None)
        return
    refund_update(
        refund_id=refund.pk, status=refund_status(result.status or ""), stripe_refund_id=result.id
    )


def refund_status(stripe_status: str) -> str:
    """Our refund status for Stripe's (pending, requires_action and unknown ones wait)."""
    return {
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.FAILED,
    }.get(stripe_status, RefundStatus.PENDING)


def payment_refunded_by_provider(*, payment_intent: str, amount_refunded: int) -> str:
    """Stripe says this much of a payment is back with the payer (charge.refunded),
    whoever asked for it (us, or someone in Stripe's dashboard). Only ever grows."""
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update().filter(payment_intent_id=payment_intent).first()
        )
        if payment is None:
            return "unknown payment"
        if amount_refunded > payment.refunded_amount:
            payment.refunded_amount = min(amount_refunded, payment.paid_amount)
            payment.save(update_fields=["refunded_amount", "updated_at"])
    return "refund recorded"


# A refund's states in the order Stripe moves them: pending, then succeeded or failed,
# and a succeeded refund can still fail later (e.g. the card was closed). Events may
# arrive in any order, so a refund only ever moves forward in this ranking.
_REFUND_RANK = {RefundStatus.PENDING: 0, RefundStatus.SUCCEEDED: 1, RefundStatus.FAILED: 2}


def refund_update(*, refund_id: int, status: str, stripe_refund_id: str | None) -> None:
    """Record a refund's state; the payment's refunded amount counts succeeded ones."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        if stripe_refund_id and not refund.stripe_refund_id:
            refund.stripe_refund_id = stripe_refund_id
        was = refund.status
        if _REFUND_RANK[RefundStatus(status)] > _REFUND_RANK[RefundStatus(was)]:
            refund.status = status
        refund.save(update_fields=["status", "stripe_refund_id", "updated_at"])
        if refund.status == was:
            return
        if refund.status == RefundStatus.FAILED:
            logger.error(
                "refund %s of payment %s failed: the student still has to be paid back",
                refund.pk,
                payment.pk,
            )
        succeeded = sum(
            Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED).values_list(
                "amount", flat=True
            )
        )
        if was == RefundStatus.SUCCEEDED:
            # It failed after all: that money is not back with the student.
            payment.refunded_amount = min(payment.refunded_amount, succeeded)
        else:
            payment.refunded_amount = max(payment.refunded_amount, succeeded)
        payment.refunded_amount = min(payment.paid_amount, payment.refunded_amount)
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


def refund_owe_for_booking(*, booking: Booking, amount: int, reason: str) -> Refund | None:
    """Inside a cancellation's transaction: record what its policy gives back."""
    paid = Payment.objects.checkouts().filter(status=PaymentStatus.PAID)
    if booking.series_id:
        # The series' one payment: this session's share of it goes back.
        payment = paid.filter(series_id=booking.series_id).first()
    else:
        payment = paid.filter(booking=booking).first()
    if payment is None:
        logger.info("no paid payment for booking %s: nothing to refund", booking.pk)
        return None
    return refund_owe(
        payment=payment,
        amount=amount,
        reason=reason,
        booking=booking if payment.series_id else None,
    )


def refunds_send(*, booking_id: BookingId) -> None:
    """After the commit: ask Stripe for every refund the booking is still owed."""
    pending = (
        Refund.objects.filter(Q(payment__booking_id=booking_id) | Q(booking_id=booking_id))
        .filter(status=RefundStatus.PENDING, stripe_refund_id__isnull=True)
        .values_list("pk", flat=True)
    )
    for pk in list(pending):
        refund_send(refund_id=pk)


def simulated_pay(*, payment: Payment, now: datetime) -> Settlement:
    if payment.provider != Provider.SIMULATED:
        raise ApplicationError("not_simulated", "This is not a simulated checkout.", status=404)
    return payment_succeeded(
        payment_id=payment.pk,
        now=now,
        received=Money(payment.amount, payment.currency),
        source="simulated checkout",
    )


def simulated_cancel(*, payment: Payment, now: datetime) -> None:
    if payment.provider != Provider.SIMULATED:
        raise ApplicationError("not_simulated", "This is not a simulated checkout.", status=404)
    if payment.series_id:
        booking_series.series_release(
            series_id=payment.series_id, reason="checkout cancelled", now=now, expire=False
        )
    elif payment.booking is not None and payment.booking.status == BookingStatus.PENDING_PAYMENT:
        booking_services.booking_cancel(
            booking_id=payment.booking.pk, actor=Actor.STUDENT, now=now, reason="checkout cancelled"
        )


# --- purchases (prepaid packages) -----------------------------------------------------------


def purchase_checkout_open(*, amount: int, currency: str) -> Payment:
    """Record the payment a purchase expects, inside the purchase's own transaction.

    Like checkout_open, for something bought ahead of any booking (payments/
    purchase_port.py says who grants it once paid). A simulated payment's page is the
    seller's own; a Stripe one gets its session from purchase_checkout_start().
    """
    payment = Payment(
        kind=PaymentKind.PURCHASE, provider=_provider(), amount=amount, currency=currency
    )
    payment.save(force_insert=True)
    return payment


def purchase_checkout_start(
    *,
    payment: Payment,
    product_name: str,
    description: str,
    customer_email: str,
    success_url: str,
    cancel_url: str,
    now: datetime,
) -> Payment:
    """After the commit: create the Stripe session for a purchase's payment. Safe to
    repeat (a payment that has its page is returned as it is); PaymentUnavailable
    leaves the payment failed."""
    if payment.checkout_url:
        return payment
    try:
        session = gateway.create_checkout_session(
            booking_id=None,
            payment_id=str(payment.pk),
            amount=payment.amount,
            currency=payment.currency,
            product_name=product_name,
            description=description,
            customer_email=customer_email,
            expires_at=now + STRIPE_MIN_SESSION + timedelta(minutes=30),
            success_url=success_url,
            cancel_url=cancel_url,
        )
    except gateway.GatewayError as exc:
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED, last_error=str(exc)[:2000]
        )
        raise PaymentUnavailable(
            "The payment service is not available. Nothing was charged; please try again.",
            status=503 if exc.retryable else 502,
        ) from exc
    if session.url is None:
        _fail_without_page(payment, session)
    payment.checkout_session_id = session.id
    payment.checkout_url = session.url
    payment.save(update_fields=["checkout_session_id", "checkout_url", "updated_at"])
    return payment
