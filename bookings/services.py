"""Every write to bookings and availability. Views, tasks and the admin call these.

Each function takes the current time as `now` so tests control it, is keyword-only, and
is safe to repeat: state changes lock the row and check its state first (lock-and-check);
on SQLite, where select_for_update() is a no-op, transactions begin IMMEDIATE (see
config/settings/base.py), which serialises writers the same way.
"""

import hashlib
import hmac
import ipaddress
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from . import notifications, sql, tokens, validation
from .availability import Closed, Open, decide, slots_materialise
from .errors import ApplicationError, NotFound, PaymentUnavailable, SlotUnavailable
from .models import (
    ACTIVE_STATUSES,
    TRANSITIONS,
    Actor,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingId,
    BookingSeries,
    BookingStatus,
    Mode,
    Offering,
    Slot,
    SlotRemoval,
    SlotSource,
    Tutor,
)
from .payment_port import payment_port
from .policy import policy_refund, reschedulable

logger = logging.getLogger(__name__)


# --- status changes -----------------------------------------------------------------------


def _transition(
    booking: Booking,
    to: str,
    *,
    actor: str,
    now: datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
    update_fields: tuple[str, ...] = (),
) -> None:
    """Move a locked booking to `to` and log it. Refuses moves TRANSITIONS does not allow."""
    if to not in TRANSITIONS[booking.status]:
        raise ApplicationError(
            "invalid_transition",
            f"A {booking.get_status_display().lower()} booking cannot become {to}.",
            status=409,
        )
    from_status = booking.status
    booking.status = to
    booking.save(update_fields=["status", "updated_at", *update_fields])
    BookingEvent.objects.create(
        booking=booking,
        from_status=from_status,
        to_status=to,
        actor=actor,
        reason=reason,
        data=data or {},
        at=now,
    )


def _locked(booking_id: BookingId) -> Booking:
    """The booking, locked, with its slot, tutor and offering.

    The lock is taken on the booking row alone, and the joined rows read after it: on
    PostgreSQL a locking read that joins the slot re-checks the join after waiting, and
    a reschedule that committed meanwhile (moving the booking to another slot) would
    make the booking vanish from the answer (a false "not found").
    """
    if not Booking.objects.select_for_update().filter(pk=booking_id).values_list("pk"):
        raise NotFound("No such booking.")
    return Booking.objects.select_related("slot", "tutor", "offering").get(pk=booking_id)


def _series_changed(booking: Booking) -> None:
    """A session of a weekly series changed: the series' invite (bookings.ics) gets a
    higher SEQUENCE, so calendars take the new version of the whole series."""
    if booking.series_id is not None:
        BookingSeries.objects.filter(pk=booking.series_id).update(sequence=F("sequence") + 1)


# --- holds --------------------------------------------------------------------------------


def _offering_or_refuse(decision: Open | Closed, mode: str) -> Offering:
    """The offering an open decision sells in `mode`; SlotUnavailable naming the reason."""
    if isinstance(decision, Closed):
        raise SlotUnavailable(decision.message, reason=decision.reason)
    return decision.offerings[mode]


def _slot_for_booking(
    slot_id: int,
    mode: str,
    *,
    lock_tutor: bool = False,
    lock_keys: Sequence[str] = (),
    private: bool = False,
) -> Slot:
    """The slot a student asked for, with clear field errors for what can never work.

    `lock_tutor` also locks the slot's tutor row in the same query (holds serialise
    per tutor, see booking_hold), after the advisory `lock_keys` (see sql.slot_with_tutor).
    A private slot (a requested time, bookings.time_requests) exists only for a caller
    that came through its link (`private`): for anyone else it is no slot at all.
    """
    slot = sql.slot_with_tutor(slot_id, lock_tutor=lock_tutor, lock_keys=lock_keys)
    if slot is not None and slot.source == SlotSource.PRIVATE and not private:
        slot = None
    if slot is None or not slot.tutor.is_active:
        raise ApplicationError(
            "invalid", "That slot does not exist.", fields={"slot": ["No such slot."]}
        )
    if mode not in {Mode.REMOTE.value, Mode.IN_PERSON.value} or slot.offering_for(mode) is None:
        offered = ", ".join(slot.offerings()) or "nothing"
        raise ApplicationError(
            "mode_not_offered",
            f"This slot is not offered as {mode}.",
            fields={"mode": [f"Not offered in this slot (offered: {offered})."]},
        )
    return slot


def client_digest(address: str) -> str:
    """A keyed digest of a client's network address: enough to count its holds, useless
    to anyone reading the database for the address itself.

    An IPv6 client is counted by its /64 network: one subscriber gets a whole /64 and
    could otherwise hold from a fresh address each time.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        network = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    else:
        network = str(ip)
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"client:{network}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Hold:
    """A fresh hold and where its student pays for it."""

    booking: Booking
    payment_url: str


ONE_HOLD_REMEDY = "Pay for or cancel one first, or wait for a hold to expire."


def hold_limits_check(
    around: sql.Around, *, digest: str, held: int = 1, remedy: str = ONE_HOLD_REMEDY
) -> None:
    """The limits on unpaid holds, for `held` new holds at once (a series counts as its
    weeks): per student email, per network (`digest`, services.client_digest) and the
    tutor-wide share. A student or network with no other unpaid holds may take more
    than the per-email or per-client limit at once (a whole series), which then
    blocks further holds until it is paid. The tutor-wide share counts the new holds
    as one: it guards against many clients at once, and a series is one client."""
    per_email = max(settings.BOOKING_MAX_HOLDS_PER_EMAIL, held)
    if around.holds_by_email + held > per_email:
        raise ApplicationError(
            "too_many_holds",
            f"You already hold {around.holds_by_email} unpaid slots. {remedy}",
            status=409,
        )
    per_client = max(settings.BOOKING_MAX_HOLDS_PER_CLIENT, held)
    if digest and around.holds_by_client + held > per_client:
        raise ApplicationError(
            "too_many_holds",
            f"{around.holds_by_client} unpaid slots are already held from your network. {remedy}",
            status=409,
        )
    if around.tutor_holds + 1 > max(
        settings.BOOKING_MIN_HELD_PER_TUTOR,
        settings.BOOKING_MAX_HELD_SHARE * around.tutor_slots,
    ):
        # Many clients together (throwaway emails, rotating addresses) must not be
        # able to sit on a tutor's whole calendar either.
        raise ApplicationError(
            "too_many_holds",
            "Many of this tutor's times are being paid for right now. Please try again "
            f"in a few minutes (unpaid holds end after {settings.BOOKING_HOLD_MINUTES} "
            "minutes).",
            status=409,
            reason="tutor_share",
        )


def hold_lock_keys(email: str, digest: str) -> list[str]:
    """The advisory locks a hold takes with its tutor's row, in this order everywhere:
    the student's email, then the client's network (see sql.slot_with_tutor)."""
    return [f"email:{email}", f"client:{digest}" if digest else ""]


def _hold_row(
    *,
    slot_id: int,
    mode: str,
    student_name: str,
    student_email: str,
    now: datetime,
    notes: str,
    student_timezone: str,
    client: str,
    request_key: str | None,
    checkout: bool = True,
    private: bool = False,
) -> tuple[Booking, str | None]:
    """The hold's transaction: the booking row, its event and its payment row. Returns
    the booking and its checkout URL when that needs no network call (else None).
    `checkout` False: paid in advance (booking_hold_prepaid), no payment row."""
    email = student_email.strip().lower()
    digest = client_digest(client)
    with transaction.atomic():
        # Serialise holds per tutor: the travel buffer spans several slots, so the
        # per-slot unique index alone could not keep two nearby holds apart. Reading
        # the slot and locking its tutor is one query, which also serialises holds
        # per student and client so their limits hold across tutors.
        slot = _slot_for_booking(
            slot_id,
            mode,
            lock_tutor=True,
            lock_keys=hold_lock_keys(email, digest),
            private=private,
        )
        around = sql.busy_around(
            slot,
            margin=slot.tutor.travel_buffer,
            holds_of=email,
            client=digest,
            tutor_share=True,
            now=now,
        )
        decision = decide(slot, mode=mode, now=now, busy=around.busy)
        if isinstance(decision, Closed):
            raise SlotUnavailable(decision.message, reason=decision.reason)
        if checkout:
            # The limits are on unpaid holds; a booking paid in advance never is one.
            hold_limits_check(around, digest=digest)
        offering = decision.offerings[mode]
        booking = Booking.objects.create(
            tutor=slot.tutor,
            slot=slot,
            offering=offering,
            mode=mode,
            student_name=student_name.strip(),
            student_email=email,
            student_timezone=student_timezone,
            notes=notes.strip(),
            price_amount=offering.price_amount,
            currency=offering.currency,
            status=BookingStatus.PENDING_PAYMENT,
            hold_expires_at=now + timedelta(minutes=settings.BOOKING_HOLD_MINUTES),
            client_digest=digest,
            request_key=request_key,
        )
        BookingEvent.objects.create(
            booking=booking,
            to_status=BookingStatus.PENDING_PAYMENT,
            actor=Actor.STUDENT,
            reason="held",
            at=now,
        )
        # The payment row belongs to the hold: created in the same transaction.
        url = payment_port().open_checkout(booking) if checkout else None
    return booking, url


def booking_hold(
    *,
    slot_id: int,
    mode: str,
    student_name: str,
    student_email: str,
    now: datetime,
    notes: str = "",
    student_timezone: str = "",
    client: str = "",
    request_key: str | None = None,
    private: bool = False,
) -> Hold:
    """Hold a slot for a student until hold_expires_at, and open the checkout they pay at.

    `client`: the student's network address; at most BOOKING_MAX_HOLDS_PER_CLIENT
    unpaid holds come from one. `request_key`: a form's one-time key; sending the same
    key again answers with the hold it already made (a double tap, Back and resend).
    The checkout is opened after the hold's transaction (a network call); if the
    provider is down or refuses, the hold is released again so nothing is left
    half-made, and PaymentUnavailable reaches the caller. `private`: the caller came
    through a requested time's private link (time_requests.offer_hold), the only way
    to hold a private slot.
    """
    if request_key:
        earlier = hold_for_request(request_key)
        if earlier is not None:
            return earlier
    try:
        booking, url = _hold_row(
            slot_id=slot_id,
            mode=mode,
            student_name=student_name,
            student_email=student_email,
            now=now,
            notes=notes,
            student_timezone=student_timezone,
            client=client,
            request_key=request_key,
            private=private,
        )
    except IntegrityError:
        # The same form sent twice at once: the other request made the hold.
        earlier = hold_for_request(request_key) if request_key else None
        if earlier is not None:
            return earlier
        # The partial unique index / exclusion constraint caught a race the check missed.
        raise SlotUnavailable(reason="booked") from None
    if url is None:  # the provider's checkout needs a network call: after the commit
        try:
            url = payment_port().start_checkout(booking)
        except PaymentUnavailable:
            booking_release(booking_id=booking.pk, reason="checkout_failed", now=now)
            raise
    return Hold(booking=booking, payment_url=url)


def booking_hold_prepaid(
    *,
    slot_id: int,
    mode: str,
    student_name: str,
    student_email: str,
    now: datetime,
    reason: str,
    data: dict[str, Any] | None = None,
    notes: str = "",
    student_timezone: str = "",
    client: str = "",
) -> Booking:
    """Hold and confirm at once a booking paid in advance (a prepaid package credit):
    the same locks and availability decision as booking_hold, no checkout, and not the
    limits on unpaid holds (it is confirmed in the same transaction, never unpaid).

    Call it inside the transaction that takes the payment (the caller has locked what
    pays and records the spend there), so the booking and its payment commit together
    or not at all.
    """
    try:
        with transaction.atomic():
            booking, _ = _hold_row(
                slot_id=slot_id,
                mode=mode,
                student_name=student_name,
                student_email=student_email,
                now=now,
                notes=notes,
                student_timezone=student_timezone,
                client=client,
                request_key=None,
                checkout=False,
            )
            # "prepaid" marks it for the earnings (selectors.tutor_earnings): no card
            # money came for this booking.
            prepaid = {**(data or {}), "prepaid": True}
            return booking_confirm(booking_id=booking.pk, now=now, reason=reason, data=prepaid)
    except IntegrityError:
        # The partial unique index / exclusion constraint caught a race the check missed.
        raise SlotUnavailable(reason="booked") from None


def hold_for_request(request_key: str) -> Hold | None:
    """The hold a form submission already made, with where to pay for it (or, once it
    is paid or over, its manage page)."""
    booking = (
        Booking.objects.select_related("slot", "tutor", "offering")
        .filter(request_key=request_key)
        .first()
    )
    if booking is None:
        return None
    url = None
    if booking.status == BookingStatus.PENDING_PAYMENT:
        url = payment_port().checkout_url(booking)
    return Hold(booking=booking, payment_url=url or booking.manage_url)


def booking_release(*, booking_id: BookingId, reason: str, now: datetime) -> Booking:
    """Give a held slot back because the checkout could not even start."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == BookingStatus.PENDING_PAYMENT:
            _transition(
                booking, BookingStatus.CANCELLED, actor=Actor.SYSTEM, reason=reason, now=now
            )
    return booking


def booking_expire(*, booking_id: BookingId, now: datetime, force: bool = False) -> bool:
    """Expire one unpaid hold whose time is up. True if this call expired it.

    `force` expires it before its time: the checkout behind it closed unpaid.
    """
    with transaction.atomic():
        booking = _locked(booking_id)
        due = force or (booking.hold_expires_at is not None and booking.hold_expires_at <= now)
        if booking.status != BookingStatus.PENDING_PAYMENT or not due:
            return False
        _transition(
            booking, BookingStatus.EXPIRED, actor=Actor.SYSTEM, reason="hold_expired", now=now
        )
        notifications.notify_hold_expired(booking, now=now)
    payment_port().abandon_checkout(booking)
    return True


def bookings_expire_holds(*, now: datetime) -> int:
    """The sweeper: expire every hold past its time. Safe to run twice or concurrently."""
    due = Booking.objects.filter(
        status=BookingStatus.PENDING_PAYMENT, hold_expires_at__lte=now
    ).values_list("pk", flat=True)
    return sum(booking_expire(booking_id=pk, now=now) for pk in list(due))


def booking_confirm(
    *,
    booking_id: BookingId,
    now: datetime,
    reason: str = "paid",
    data: dict[str, Any] | None = None,
) -> Booking:
    """Money arrived: confirm the booking. Repeating it changes nothing.

    A payment for a hold that already expired still confirms if its slot is free
    (late money); if the slot was taken meanwhile, SlotUnavailable tells the payment
    side to refund.
    """
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status in (
            BookingStatus.CONFIRMED,
            BookingStatus.COMPLETED,
            BookingStatus.NO_SHOW,
        ):
            return booking
        if booking.status == BookingStatus.EXPIRED:
            # Late money: the hold is gone, so the slot is asked about afresh, by the
            # same rules as a new hold (the tutor's lock first, as a hold takes it).
            # Notice counts from when the student held it: they were in time then.
            Tutor.objects.select_for_update().get(pk=booking.tutor_id)
            slot = booking.slot
            around = sql.busy_around(slot, margin=booking.tutor.travel_buffer, now=now)
            decision = decide(
                slot,
                mode=booking.mode,
                now=now,
                busy=around.busy,
                ignore_booking_id=booking.pk,
                notice_from=booking.created_at,
            )
            if isinstance(decision, Closed):
                raise SlotUnavailable(
                    f"After this hold expired: {decision.message}", reason=decision.reason
                )
        elif booking.status != BookingStatus.PENDING_PAYMENT:
            raise ApplicationError(
                "invalid_transition", f"A {booking.status} booking cannot be confirmed.", status=409
            )
        booking.confirmed_at = now
        booking.hold_expires_at = None
        try:
            with transaction.atomic():
                _transition(
                    booking,
                    BookingStatus.CONFIRMED,
                    actor=Actor.PAYMENT,
                    reason=reason,
                    data=data,
                    now=now,
                    update_fields=("confirmed_at", "hold_expires_at"),
                )
        except IntegrityError:
            raise SlotUnavailable(
                "The slot was taken after this hold expired.", reason="booked"
            ) from None
        notifications.notify_confirmed(booking, now=now)
    return booking


# --- cancel, reschedule, outcome -----------------------------------------------------------


@dataclass(frozen=True)
class Cancellation:
    """What a cancellation gave back: money (`refund_amount`, minor units), or, for a
    booking paid with a package credit (`prepaid`), the credit (`credit_returned`)."""

    booking: Booking
    refund_amount: int
    prepaid: bool = False
    credit_returned: bool = False


def cancellation_of(booking: Booking) -> Cancellation:
    """A cancelled booking's cancellation, as its cancel event recorded it."""
    data = (
        booking.events.filter(to_status=BookingStatus.CANCELLED)
        .order_by("-at", "-pk")
        .values_list("data", flat=True)
        .first()
    ) or {}
    return Cancellation(
        booking,
        booking.refund_amount,
        prepaid=bool(data.get("prepaid")),
        credit_returned=bool(data.get("credit_returned")),
    )


# The cancel event's reason when a student or tutor cancels the rest of a weekly series
# (bookings.series.series_cancel_rest): those sessions are told about in one email.
REST_OF_SERIES = "rest of the series cancelled"


def booking_cancel(
    *, booking_id: BookingId, actor: str, now: datetime, reason: str = "", tell: bool = True
) -> Cancellation:
    """Cancel a held or confirmed booking and refund per policy. Repeating it is a no-op.

    `tell` False: the caller tells student and tutor itself, once for many sessions
    (series_cancel_rest)."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == BookingStatus.CANCELLED:
            return cancellation_of(booking)
        if booking.status not in ACTIVE_STATUSES:
            raise ApplicationError(
                "not_cancellable",
                f"A {booking.get_status_display().lower()} booking cannot be cancelled.",
                status=409,
            )
        if booking.slot.start <= now and booking.status == BookingStatus.CONFIRMED:
            raise ApplicationError(
                "session_started", "The session has already started.", status=409
            )
        was_held = booking.status == BookingStatus.PENDING_PAYMENT
        refund = policy_refund(booking, actor=actor, now=now)
        # Paid with a prepaid credit (packages): within the policy the credit goes
        # back instead of money; outside it, the credit stays spent.
        prepaid = not was_held and payment_port().prepaid_cancelled(
            booking, refundable=refund > 0, now=now
        )
        credit_returned = prepaid and refund > 0
        if prepaid:
            refund = 0
        booking.cancelled_at = now
        booking.refund_amount = refund
        booking.sequence += 1
        data: dict[str, Any] = {"refund_amount": refund, "currency": booking.currency}
        if prepaid:
            data |= {"prepaid": True, "credit_returned": credit_returned}
        _transition(
            booking,
            BookingStatus.CANCELLED,
            actor=actor,
            reason=reason or f"cancelled by {actor}",
            data=data,
            now=now,
            update_fields=("cancelled_at", "refund_amount", "sequence"),
        )
        if booking.series_id:
            _series_changed(booking)
        if refund:
            # Owed in this transaction, paid after it: a crash in between leaves a
            # pending refund for the retry task, never a cancellation without its money.
            payment_port().refund_owe(booking, amount=refund, reason=f"cancelled by {actor}")
        if not was_held and not tell:
            notifications.void_reminders(booking)
        elif not was_held:  # nothing to tell about a hold the student dropped themselves
            notifications.notify_cancelled(
                booking,
                now=now,
                refund_amount=refund,
                by=actor,
                reason=reason,
                prepaid=prepaid,
                credit_returned=credit_returned,
            )
    port = payment_port()
    if was_held:
        port.abandon_checkout(booking)
    elif refund:
        port.refunds_send(booking)
    return Cancellation(booking, refund, prepaid=prepaid, credit_returned=credit_returned)


def booking_reschedule(
    *, booking_id: BookingId, slot_id: int, now: datetime, actor: str = Actor.STUDENT
) -> Booking:
    """Move a confirmed booking to another open slot: same mode, same price, no new payment.

    A student may while the cancellation policy would still refund in full; the tutor
    (`actor` TUTOR) may until the session starts. Either way the student gets the
    updated invite.
    """
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != BookingStatus.CONFIRMED:
            raise ApplicationError(
                "not_reschedulable", "Only a confirmed booking can be rescheduled.", status=409
            )
        if actor == Actor.TUTOR and booking.slot.start <= now:
            raise ApplicationError(
                "session_started", "The session has already started.", status=409
            )
        if actor != Actor.TUTOR and not reschedulable(booking, now=now):
            raise ApplicationError(
                "reschedule_window_closed",
                f"Sessions can be moved up to {booking.tutor.full_refund_hours} hours "
                "before they start.",
                status=409,
            )
        if booking.slot_id == slot_id:
            return booking
        new_slot = _slot_for_booking(slot_id, booking.mode)
        if new_slot.tutor_id != booking.tutor_id:
            raise ApplicationError(
                "invalid", "That slot belongs to another tutor.", fields={"slot": ["No such slot."]}
            )
        Tutor.objects.select_for_update().get(pk=booking.tutor_id)
        around = sql.busy_around(new_slot, margin=new_slot.tutor.travel_buffer, now=now)
        decision = decide(
            new_slot, mode=booking.mode, now=now, busy=around.busy, ignore_booking_id=booking.pk
        )
        offering = _offering_or_refuse(decision, booking.mode)
        if offering.duration_minutes != booking.offering.duration_minutes:
            raise ApplicationError(
                "invalid",
                "That slot is for a session of a different length.",
                fields={"slot": ["Pick a slot of the same length."]},
            )
        old = booking.slot
        booking.slot = new_slot
        booking.sequence += 1
        try:
            with transaction.atomic():
                booking.save(update_fields=["slot", "sequence", "updated_at"])
        except IntegrityError:
            raise SlotUnavailable(reason="booked") from None
        if booking.series_id:
            _series_changed(booking)
        BookingEvent.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            actor=actor,
            reason="rescheduled",
            data={
                "from_slot": old.pk,
                "from_start": old.start.isoformat(),
                "to_slot": new_slot.pk,
                "to_start": new_slot.start.isoformat(),
            },
            at=now,
        )
        notifications.notify_rescheduled(booking, now=now, old_start=old.start, by=actor)
    return booking


def booking_late_payment_refunded(
    *, booking_id: BookingId, amount: int, why: str, now: datetime, tell: bool = True
) -> None:
    """Money came for a booking that can no longer have it ("taken": its hold expired
    and the slot went to someone else; "cancelled": cancelled while paying). The
    payment side refunds it; this records the amount and tells the student (`tell`
    False: the caller tells them once for several weeks of a series)."""
    booking = _locked(booking_id)
    if booking.status == BookingStatus.CANCELLED:
        booking.refund_amount = amount
        booking.save(update_fields=["refund_amount", "updated_at"])
    if tell:
        notifications.notify_late_payment_refunded(booking, now=now, amount=amount, why=why)


def booking_payment_refused(
    *,
    booking_id: BookingId,
    amount: int,
    currency: str,
    why: str,
    own_checkout: bool,
    now: datetime,
) -> None:
    """Money came that cannot pay for this booking (`why`: wrong_amount, wrong_currency,
    not_its_checkout). The payment side refunds it in full; this tells student and tutor.

    When it came through the booking's own checkout, that checkout is used up: a hold
    still waiting on it is released, so the slot does not stay held for nobody.
    """
    booking = _locked(booking_id)
    if own_checkout and booking.status == BookingStatus.PENDING_PAYMENT:
        _transition(
            booking,
            BookingStatus.CANCELLED,
            actor=Actor.PAYMENT,
            reason=f"payment refused: {why}",
            data={"amount": amount, "currency": currency},
            now=now,
        )
    notifications.notify_payment_refused(
        booking, now=now, amount=amount, currency=currency, why=why
    )


def booking_mark_outcome(*, booking_id: BookingId, status: str, now: datetime) -> Booking:
    """The tutor records how a session went: completed once it has started, no_show
    once its time is over (a student may still turn up late). booking_outcome_undo()
    takes either back."""
    if status not in (BookingStatus.COMPLETED, BookingStatus.NO_SHOW):
        raise ApplicationError("invalid", "Outcome must be completed or no_show.")
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == status:
            return booking
        if booking.status == BookingStatus.CONFIRMED and booking.slot.start > now:
            raise ApplicationError(
                "session_not_started", "The session has not started yet.", status=409
            )
        if (
            status == BookingStatus.NO_SHOW
            and booking.status == BookingStatus.CONFIRMED
            and booking.slot.end > now
        ):
            raise ApplicationError(
                "session_not_over",
                "A no-show can be recorded once the session's time is over.",
                status=409,
            )
        _transition(booking, status, actor=Actor.TUTOR, reason=f"marked {status}", now=now)
    return booking


# --- the tutor's availability ---------------------------------------------------------------


def offering_save(
    *, tutor: Tutor, now: datetime, offering: Offering | None = None, **fields: Any
) -> Offering:
    """Create or edit an offering (session type), with the rules a mode carries.

    Remote sessions need a video link, in-person ones a meeting place; an offering that
    weekly rules use keeps its length (their slots have it). Saving an existing one
    brings the slots in line (a deactivated offering leaves the slots that offered it).
    """
    offering = offering or Offering(tutor=tutor, currency=tutor.currency)
    # From the database: a form may already have written its input onto the instance.
    old_duration = (
        Offering.objects.filter(pk=offering.pk).values_list("duration_minutes", flat=True).first()
        if offering.pk
        else None
    )
    for name, value in fields.items():
        setattr(offering, name, value)
    errors: dict[str, list[str]] = {}
    if offering.mode == Mode.REMOTE and not offering.video_url:
        errors["video_url"] = ["Remote sessions need a video call link."]
    if offering.mode == Mode.IN_PERSON:
        for name in ("place_name", "place_address"):
            if not getattr(offering, name):
                errors[name] = ["In-person sessions need a meeting place."]
    if (
        old_duration is not None
        and offering.duration_minutes != old_duration
        and offering.rules.exists()
    ):
        errors["duration_minutes"] = [
            "Weekly rules use this session type: add a new one for another length."
        ]
    if errors:
        name, messages = next(iter(errors.items()))
        raise ApplicationError("invalid", f"{name}: {messages[0]}", fields=errors)
    offering.save()
    if old_duration is not None:
        slots_materialise(tutor=tutor, now=now)
    return offering


def _check_offerings(tutor: Tutor, offerings: list[Offering]) -> None:
    if not offerings:
        raise ApplicationError(
            "invalid", "Choose at least one offering.", fields={"offerings": ["Required."]}
        )
    if any(o.tutor_id != tutor.pk for o in offerings):
        raise ApplicationError(
            "invalid", "Unknown offering.", fields={"offerings": ["No such offering."]}
        )
    modes = [o.mode for o in offerings]
    if len(set(modes)) != len(modes):
        raise ApplicationError(
            "invalid",
            "Choose at most one offering per mode.",
            fields={"offerings": ["At most one remote and one in-person offering."]},
        )
    if len({o.duration_minutes for o in offerings}) != 1:
        raise ApplicationError(
            "invalid",
            "A slot has one length: the offerings must have the same duration.",
            fields={"offerings": ["Offerings of different durations."]},
        )


def rule_save(
    *, tutor: Tutor, now: datetime, rule: AvailabilityRule | None = None, **fields: Any
) -> AvailabilityRule:
    """Create or edit a weekly rule, then bring the stored slots in line with it."""
    offerings: list[Offering] | None = fields.pop("offerings", None)
    rule = rule or AvailabilityRule(tutor=tutor)
    for name, value in fields.items():
        setattr(rule, name, value)
    current = offerings if offerings is not None else list(rule.offerings.all()) if rule.pk else []
    _check_offerings(tutor, current)
    if not rule.weekdays or any(d not in range(1, 8) for d in rule.weekdays):
        raise ApplicationError(
            "invalid", "Pick weekdays 1 (Mon) to 7 (Sun).", fields={"weekdays": ["1–7."]}
        )
    rule.weekdays = sorted(set(rule.weekdays))
    if rule.end_time <= rule.start_time:
        raise ApplicationError(
            "invalid", "The end must be after the start.", fields={"end_time": ["After start."]}
        )
    if rule.valid_from and rule.valid_until and rule.valid_until < rule.valid_from:
        raise ApplicationError(
            "invalid", "valid_until is before valid_from.", fields={"valid_until": ["Too early."]}
        )
    with transaction.atomic():
        rule.save()
        if offerings is not None:
            rule.offerings.set(offerings)
    slots_materialise(tutor=tutor, now=now)
    return rule


def rule_delete(*, rule: AvailabilityRule, now: datetime) -> None:
    """Delete a rule; its future unbooked slots are withdrawn, booked ones stay."""
    tutor = rule.tutor
    rule.delete()
    slots_materialise(tutor=tutor, now=now)


def block_create(
    *, tutor: Tutor, start: datetime, end: datetime, now: datetime, reason: str = ""
) -> BlockedPeriod:
    """Block time off. Unbooked slots inside it are withdrawn; booked ones are kept."""
    if end <= start:
        raise ApplicationError(
            "invalid", "The end must be after the start.", fields={"end": ["After start."]}
        )
    if end <= now:
        raise ApplicationError(
            "invalid", "That period is already over.", fields={"end": ["In the past."]}
        )
    block = BlockedPeriod.objects.create(tutor=tutor, start=start, end=end, reason=reason)
    slots_materialise(tutor=tutor, now=now)
    return block


def block_delete(*, block: BlockedPeriod, now: datetime) -> None:
    tutor = block.tutor
    block.delete()
    slots_materialise(tutor=tutor, now=now)


def slot_create_one_off(
    *,
    tutor: Tutor,
    start: datetime,
    offerings: list[Offering],
    now: datetime,
    source: str = SlotSource.ONE_OFF,
) -> Slot:
    """A single extra slot, outside the weekly rules (`source` PRIVATE: a requested
    time's, see bookings.time_requests)."""
    _check_offerings(tutor, offerings)
    if start <= now:
        raise ApplicationError(
            "invalid", "That time has passed.", fields={"start": ["In the past."]}
        )
    by_mode = {o.mode: o for o in offerings}
    end = start + offerings[0].duration
    try:
        with transaction.atomic():
            Tutor.objects.select_for_update().get(pk=tutor.pk)
            overlapping = Slot.objects.filter(
                tutor=tutor, removed_at__isnull=True, start__lt=end, end__gt=start
            ).first()
            if overlapping is not None:
                when = tutor_local_time(overlapping.start, tutor)
                raise ApplicationError(
                    "slot_overlap",
                    f"It overlaps your slot starting {when}.",
                    status=409,
                )
            if BlockedPeriod.objects.filter(tutor=tutor, start__lt=end, end__gt=start).exists():
                raise ApplicationError(
                    "slot_blocked", "That time is inside one of your blocked periods.", status=409
                )
            return Slot.objects.create(
                tutor=tutor,
                start=start,
                end=end,
                source=source,
                remote_offering=by_mode.get(Mode.REMOTE),
                in_person_offering=by_mode.get(Mode.IN_PERSON),
            )
    except IntegrityError:
        raise ApplicationError("slot_overlap", "It overlaps another slot.", status=409) from None


def _lock_unbooked(slot: Slot) -> None:
    """Inside a transaction: hold the tutor's lock (as holds do), then refuse a booked slot."""
    Tutor.objects.select_for_update().get(pk=slot.tutor_id)
    if Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES).exists():
        raise ApplicationError(
            "slot_booked", "This slot is booked: cancel the booking first.", status=409
        )


def slot_block(*, slot: Slot, now: datetime) -> BlockedPeriod:
    """Block an unbooked slot's time (kept blocked even if a rule covers it)."""
    with transaction.atomic():
        _lock_unbooked(slot)
        return block_create(
            tutor=slot.tutor, start=slot.start, end=slot.end, reason="slot blocked", now=now
        )


def slot_delete(*, slot: Slot, now: datetime) -> Slot:
    """Withdraw an unbooked slot for good (rules will not bring it back)."""
    with transaction.atomic():
        _lock_unbooked(slot)
        if slot.removed_at is None or slot.removed_reason != SlotRemoval.DELETED:
            slot.removed_at = slot.removed_at or now
            slot.removed_reason = SlotRemoval.DELETED
            slot.save(update_fields=["removed_at", "removed_reason"])
    return slot


# What a tutor may do in the Django admin (their own rows only: see bookings/admin.py).
TUTOR_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "bookings": {
        "tutor": ("view", "change"),
        "offering": ("view", "add", "change"),
        "availabilityrule": ("view", "add", "change", "delete"),
        "blockedperiod": ("view", "add", "delete"),
        "slot": ("view", "change"),
        "booking": ("view", "change"),
        "bookingseries": ("view",),
        "timerequest": ("view",),
        "bookingevent": ("view",),
        "notification": ("view", "change"),
    },
    # Their own payments and refunds only (payments/admin.py); Stripe's events are not
    # tied to one tutor and carry other tutors' students: superusers only.
    "payments": {"payment": ("view",), "refund": ("view",)},
    # Their own packages (packages/admin.py); purchases and their ledgers read only.
    "packages": {"package": ("view", "add", "change"), "purchase": ("view",), "entry": ("view",)},
}


def tutor_group() -> Any:
    """The "Tutors" group with TUTOR_PERMISSIONS, created or brought up to date."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name="Tutors")
    codenames = [
        (app, f"{action}_{model}")
        for app, models in TUTOR_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]
    permissions = [
        p
        for p in Permission.objects.filter(content_type__app_label__in=TUTOR_PERMISSIONS)
        if (p.content_type.app_label, p.codename) in codenames
    ]
    group.permissions.set(permissions)
    return group


def tutor_save(*, tutor: Tutor, now: datetime, **fields: Any) -> Tutor:
    """Change the tutor's profile and booking rules. Notice and buffer change which slots
    are open, not which exist; a new time zone changes what the weekly rules mean."""
    moved = "timezone" in fields and fields["timezone"] != tutor.timezone
    for name, value in fields.items():
        setattr(tutor, name, value)
    tutor.save()
    if moved:
        slots_materialise(tutor=tutor, now=now)
    return tutor


def tutor_rotate_feed(*, tutor: Tutor) -> Tutor:
    """A new secret for the calendar feed URL; the old URL stops working at once."""
    tutor.feed_key = tokens.new_key()
    tutor.feed_legacy_digest = None
    tutor.save(update_fields=["feed_key", "feed_legacy_digest"])
    return tutor


def tutors_materialise(*, now: datetime) -> int:
    """The periodic task: keep every active tutor's horizon filled."""
    created = 0
    for tutor in Tutor.objects.filter(is_active=True):
        created += slots_materialise(tutor=tutor, now=now).created
    return created


# --- the tutor's tools: outcomes, moves, days off over booked sessions ------------------------


def tutor_local_time(moment: datetime, tutor: Tutor) -> str:
    """A moment as messages to the tutor say it: "Thu, Dec 3, 6:30 PM (America/New_York)"."""
    local = moment.astimezone(tutor.zone)
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%a, %b} {local.day}, {clock} ({tutor.timezone})"


def booking_outcome_undo(*, booking_id: BookingId, now: datetime) -> Booking:
    """Take back a completed or no-show mark (a slip of the finger): confirmed again,
    logged like any change. Repeating it changes nothing."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == BookingStatus.CONFIRMED:
            return booking
        was = booking.status
        if was not in (BookingStatus.COMPLETED, BookingStatus.NO_SHOW):
            raise ApplicationError(
                "invalid_transition",
                f"A {booking.get_status_display().lower()} booking has no outcome to undo.",
                status=409,
            )
        _transition(
            booking, BookingStatus.CONFIRMED, actor=Actor.TUTOR, reason=f"undid {was}", now=now
        )
    return booking


# What a tutor may write to a student when asking them to move (bounded like a note).
ASK_MESSAGE_MAX_LENGTH = validation.NOTES_MAX_LENGTH


def booking_ask_to_reschedule(*, booking_id: BookingId, now: datetime, message: str = "") -> bool:
    """The tutor asks the student to pick another time themselves: an email with the
    link to the student's own reschedule page, and the tutor's message.

    Only while the student may still move the session (policy.reschedulable): past
    that line the link would lead nowhere, so the tutor moves or cancels it instead.
    Asking again about the same version of the booking sends nothing more. True if this
    call asked.
    """
    message = validation.normalise_text(message, multiline=True)
    try:
        validation.check_text(message, multiline=True)
    except ValidationError as exc:
        raise ApplicationError(
            "invalid", exc.messages[0], fields={"message": exc.messages}
        ) from None
    if len(message) > ASK_MESSAGE_MAX_LENGTH:
        limit = f"Keep the message under {ASK_MESSAGE_MAX_LENGTH} characters."
        raise ApplicationError("invalid", limit, fields={"message": [limit]})
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != BookingStatus.CONFIRMED:
            raise ApplicationError(
                "not_reschedulable", "Only a confirmed session can be moved.", status=409
            )
        if not reschedulable(booking, now=now):
            raise ApplicationError(
                "reschedule_window_closed",
                f"Students can move a session up to {booking.tutor.full_refund_hours} hours "
                "before it starts, and this one is closer than that: move it yourself or "
                "cancel it.",
                status=409,
            )
        if not notifications.notify_pick_another_time(booking, now=now, message=message):
            return False
        BookingEvent.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            actor=Actor.TUTOR,
            reason="asked the student to pick another time",
            data={"message": message} if message else {},
            at=now,
        )
    return True


def block_cancel_bookings(
    *,
    tutor: Tutor,
    block: BlockedPeriod,
    booking_ids: Sequence[BookingId],
    now: datetime,
    reason: str = "",
) -> list[Cancellation]:
    """Cancel the chosen sessions that a blocked period covers (the tutor is away then):
    each one the tutor's cancellation, refunded in full and told to the student.

    Ids that are not this tutor's upcoming held or confirmed bookings inside the block
    are left alone, so a form cannot reach another tutor's bookings.
    """
    if block.tutor_id != tutor.pk:
        raise NotFound("No such blocked period.")
    ids = []
    for value in booking_ids:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    covered = Booking.objects.filter(
        tutor=tutor,
        pk__in=ids,
        status__in=ACTIVE_STATUSES,
        slot__start__lt=block.end,
        slot__end__gt=block.start,
        slot__start__gt=now,
    ).order_by("slot__start")
    why = reason or "the tutor is away"
    return [
        booking_cancel(booking_id=pk, actor=Actor.TUTOR, now=now, reason=why)
        for pk in covered.values_list("pk", flat=True)
    ]


def tutor_public_page_changed(*, tutor_id: int) -> None:
    """Something the tutor's public page shows changed outside the tables whose
    triggers raise the availability version (migration 0009), e.g. a package put on
    sale: raise it here, so a cached page (bookings/conditional.py) is not reused."""
    Tutor.objects.filter(pk=tutor_id).update(availability_version=F("availability_version") + 1)
