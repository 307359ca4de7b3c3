"""Every write to bookings and availability. Views, tasks and the admin call these.

Each function takes the current time as `now` so tests control it, is keyword-only, and
is safe to repeat: state changes lock the row and check its state first (lock-and-check);
on SQLite, where select_for_update() is a no-op, transactions begin IMMEDIATE (see
config/settings/base.py), which serialises writers the same way.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from . import notifications, sql
from .availability import Busy, open_offerings, slots_materialise
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
    BookingStatus,
    Mode,
    Offering,
    Slot,
    SlotRemoval,
    SlotSource,
    Tutor,
    new_token,
)
from .payment_port import payment_port

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
    try:
        return (
            Booking.objects.select_for_update(of=("self",))
            .select_related("slot", "tutor", "offering")
            .get(pk=booking_id)
        )
    except Booking.DoesNotExist:
        raise NotFound("No such booking.") from None


# --- holds --------------------------------------------------------------------------------


def _open_offering(
    slot: Slot, mode: str, *, now: datetime, busy: list[Busy], ignore: object = None
) -> Offering:
    """The offering a student would book in `slot` for `mode`, or SlotUnavailable.

    `busy`: the tutor's active bookings around the slot (sql.busy_around).
    """
    offers = open_offerings(slot, now=now, busy=busy, ignore_booking_id=ignore)
    if mode not in offers:
        if offers:
            raise SlotUnavailable(
                f"This slot can no longer be booked {Mode(mode).label.lower()}; "
                f"still open: {', '.join(Mode(m).label for m in offers)}."
            )
        raise SlotUnavailable()
    return offers[mode]


def _slot_for_booking(slot_id: int, mode: str, *, lock_tutor: bool = False) -> Slot:
    """The slot a student asked for, with clear field errors for what can never work.

    `lock_tutor` also locks the slot's tutor row in the same query (holds serialise
    per tutor, see booking_hold).
    """
    slot = sql.slot_with_tutor(slot_id, lock_tutor=lock_tutor)
    if slot is None or not slot.tutor.is_active:
        raise ApplicationError(
            "invalid", "That slot does not exist.", fields={"slot": ["No such slot."]}
        )
    if mode not in slot.offerings():
        offered = ", ".join(slot.offerings()) or "nothing"
        raise ApplicationError(
            "mode_not_offered",
            f"This slot is not offered as {mode}.",
            fields={"mode": [f"Not offered in this slot (offered: {offered})."]},
        )
    return slot


def booking_hold(
    *,
    slot_id: int,
    mode: str,
    student_name: str,
    student_email: str,
    now: datetime,
    notes: str = "",
    student_timezone: str = "",
) -> Booking:
    """Hold a slot for a student until hold_expires_at, pending payment."""
    email = student_email.strip().lower()
    try:
        with transaction.atomic():
            # Serialise holds per tutor: the travel buffer spans several slots, so the
            # per-slot unique index alone could not keep two nearby holds apart. Reading
            # the slot and locking its tutor is one query.
            slot = _slot_for_booking(slot_id, mode, lock_tutor=True)
            if slot.end <= now:
                raise SlotUnavailable("This slot is in the past.")
            busy, holds = sql.busy_around(
                slot, margin=slot.tutor.travel_buffer, holds_of=email, now=now
            )
            if holds >= settings.BOOKING_MAX_HOLDS_PER_EMAIL:
                raise ApplicationError(
                    "too_many_holds",
                    f"You already hold {holds} unpaid slots. Pay for or cancel one first, "
                    "or wait for a hold to expire.",
                    status=409,
                )
            offering = _open_offering(slot, mode, now=now, busy=busy)
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
            )
            BookingEvent.objects.create(
                booking=booking,
                to_status=BookingStatus.PENDING_PAYMENT,
                actor=Actor.STUDENT,
                reason="held",
                at=now,
            )
            # The payment row belongs to the hold: created in the same transaction.
            booking.payment_url = payment_port().open_checkout(booking)
    except IntegrityError:
        # The partial unique index / exclusion constraint caught a race the check missed.
        raise SlotUnavailable() from None
    return booking


@dataclass(frozen=True)
class Hold:
    booking: Booking
    payment_url: str


def booking_create(
    *,
    slot_id: int,
    mode: str,
    student_name: str,
    student_email: str,
    now: datetime,
    notes: str = "",
    student_timezone: str = "",
) -> Hold:
    """Hold the slot, then open a checkout for it (outside the transaction).

    If the payment provider is down or refuses, the hold is released again so nothing
    is left half-made, and PaymentUnavailable reaches the caller.
    """
    booking = booking_hold(
        slot_id=slot_id,
        mode=mode,
        student_name=student_name,
        student_email=student_email,
        notes=notes,
        student_timezone=student_timezone,
        now=now,
    )
    url = booking.payment_url
    if url is None:  # the provider's checkout needs a network call: after the commit
        try:
            url = payment_port().start_checkout(booking)
        except PaymentUnavailable:
            booking_release(booking_id=booking.pk, reason="checkout_failed", now=now)
            raise
    return Hold(booking=booking, payment_url=url)


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
            Tutor.objects.select_for_update().get(pk=booking.tutor_id)
            if Booking.objects.filter(slot=booking.slot_id, status__in=ACTIVE_STATUSES).exists():
                raise SlotUnavailable("The slot was taken after this hold expired.")
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
            raise SlotUnavailable("The slot was taken after this hold expired.") from None
        notifications.notify_confirmed(booking, now=now)
    return booking


# --- cancel, reschedule, outcome -----------------------------------------------------------


def refund_due(booking: Booking, *, actor: str, now: datetime) -> int:
    """What the cancellation policy gives back, in minor units.

    Nothing was paid for a hold. A tutor's cancellation always refunds in full; a
    student's refunds in full up to the tutor's full_refund_hours before the start,
    and nothing after.
    """
    if booking.status != BookingStatus.CONFIRMED:
        return 0
    if actor == Actor.TUTOR:
        return booking.price_amount
    deadline = booking.slot.start - timedelta(hours=booking.tutor.full_refund_hours)
    return booking.price_amount if now <= deadline else 0


@dataclass(frozen=True)
class Cancellation:
    booking: Booking
    refund_amount: int


def booking_cancel(
    *, booking_id: BookingId, actor: str, now: datetime, reason: str = ""
) -> Cancellation:
    """Cancel a held or confirmed booking and refund per policy. Repeating it is a no-op."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == BookingStatus.CANCELLED:
            return Cancellation(booking, booking.refund_amount)
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
        refund = refund_due(booking, actor=actor, now=now)
        booking.cancelled_at = now
        booking.refund_amount = refund
        booking.sequence += 1
        _transition(
            booking,
            BookingStatus.CANCELLED,
            actor=actor,
            reason=reason or f"cancelled by {actor}",
            data={"refund_amount": refund, "currency": booking.currency},
            now=now,
            update_fields=("cancelled_at", "refund_amount", "sequence"),
        )
        if refund:
            # Owed in this transaction, paid after it: a crash in between leaves a
            # pending refund for the retry task, never a cancellation without its money.
            payment_port().owe_refund(booking, amount=refund, reason=f"cancelled by {actor}")
        if not was_held:  # nothing to tell about a hold the student dropped themselves
            notifications.notify_cancelled(booking, now=now, refund_amount=refund, by=actor)
    port = payment_port()
    if was_held:
        port.abandon_checkout(booking)
    elif refund:
        port.send_refunds(booking)
    return Cancellation(booking, refund)


def booking_reschedule(*, booking_id: BookingId, slot_id: int, now: datetime) -> Booking:
    """Move a confirmed booking to another open slot: same mode, same price, no new payment.

    Allowed while the cancellation policy would still refund in full.
    """
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != BookingStatus.CONFIRMED:
            raise ApplicationError(
                "not_reschedulable", "Only a confirmed booking can be rescheduled.", status=409
            )
        if refund_due(booking, actor=Actor.STUDENT, now=now) < booking.price_amount:
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
        busy, _ = sql.busy_around(new_slot, margin=new_slot.tutor.travel_buffer, now=now)
        offering = _open_offering(new_slot, booking.mode, now=now, busy=busy, ignore=booking.pk)
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
            raise SlotUnavailable() from None
        BookingEvent.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            actor=Actor.STUDENT,
            reason="rescheduled",
            data={
                "from_slot": old.pk,
                "from_start": old.start.isoformat(),
                "to_slot": new_slot.pk,
                "to_start": new_slot.start.isoformat(),
            },
            at=now,
        )
        notifications.notify_rescheduled(booking, now=now, old_start=old.start)
    return booking


def booking_late_payment_refunded(
    *, booking_id: BookingId, amount: int, why: str, now: datetime
) -> None:
    """Money came for a booking that can no longer have it ("taken": its hold expired
    and the slot went to someone else; "cancelled": cancelled while paying). The
    payment side refunds it; this records the amount and tells the student."""
    booking = _locked(booking_id)
    if booking.status == BookingStatus.CANCELLED:
        booking.refund_amount = amount
        booking.save(update_fields=["refund_amount", "updated_at"])
    notifications.notify_late_payment_refunded(booking, now=now, amount=amount, why=why)


def booking_mark_outcome(*, booking_id: BookingId, status: str, now: datetime) -> Booking:
    """The tutor records how a session went: completed or no_show, once it has started."""
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
    *, tutor: Tutor, start: datetime, offerings: list[Offering], now: datetime
) -> Slot:
    """A single extra slot, outside the weekly rules."""
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
                raise ApplicationError(
                    "slot_overlap",
                    f"It overlaps your slot starting {overlapping.start.isoformat()}.",
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
                source=SlotSource.ONE_OFF,
                remote_offering=by_mode.get(Mode.REMOTE),
                in_person_offering=by_mode.get(Mode.IN_PERSON),
            )
    except IntegrityError:
        raise ApplicationError("slot_overlap", "It overlaps another slot.", status=409) from None


def slot_delete(*, slot: Slot, now: datetime) -> Slot:
    """Withdraw an unbooked slot for good (rules will not bring it back)."""
    with transaction.atomic():
        Tutor.objects.select_for_update().get(pk=slot.tutor_id)
        if Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES).exists():
            raise ApplicationError(
                "slot_booked",
                "This slot is booked: cancel the booking first.",
                status=409,
            )
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
        "blockedperiod": ("view", "add", "change", "delete"),
        "slot": ("view", "change"),
        "booking": ("view", "change"),
        "bookingevent": ("view",),
        "notification": ("view", "change"),
    },
    "payments": {"payment": ("view",), "refund": ("view",), "stripeevent": ("view",)},
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
    tutor.feed_token = new_token()
    tutor.save(update_fields=["feed_token"])
    return tutor


def tutors_materialise(*, now: datetime) -> int:
    """The periodic task: keep every active tutor's horizon filled."""
    created = 0
    for tutor in Tutor.objects.filter(is_active=True):
        created += slots_materialise(tutor=tutor, now=now).created
    return created
