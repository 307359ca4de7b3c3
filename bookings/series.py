"""Weekly series: "every Tuesday 18:00 for N weeks", held, paid, confirmed and cancelled
together where that is what the student asked, and week by week where it is not.

A series is N ordinary bookings (one per week, Booking.series / series_week) and one
BookingSeries row for what they share. Every week is judged by the same rules as a
single hold (availability.decide), under the same tutor lock, and the whole series is
written in one transaction: all weeks held, or none. The same wall-clock time in the
tutor's zone each week (so 18:00 stays 18:00 across a daylight-saving change); a week
whose time does not exist that day, has no slot, or is not open is named with why,
and the student may skip it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from . import notifications, sql
from .availability import CLOSED, Closed, busy_bookings, decide, horizon_end, local_to_utc
from .errors import ApplicationError, NotFound, PaymentUnavailable, SlotUnavailable
from .models import (
    MAX_SERIES_WEEKS,
    Actor,
    Booking,
    BookingEvent,
    BookingSeries,
    BookingStatus,
    Slot,
    SlotSource,
    Tutor,
)
from .payment_port import payment_port
from .services import (
    REST_OF_SERIES,
    Cancellation,
    _slot_for_booking,
    booking_cancel,
    booking_confirm,
    booking_expire,
    booking_late_payment_refunded,
    booking_payment_refused,
    booking_release,
    client_digest,
    hold_limits_check,
    hold_lock_keys,
)
from .tokens import key_of

# Why a week of a series cannot be held, beyond availability's own reasons.
WEEK_REASONS = {
    **CLOSED,
    "no_such_time": "That wall-clock time does not exist that day (a daylight-saving change).",
    "no_slot": "The tutor has no slot at that time that week.",
    "other_offering": "That week's slot sells a different session.",
}


@dataclass(frozen=True)
class Week:
    """One week of a series as asked: its number (1 = the first), its date and time on
    the tutor's wall clock, and the slot there (None if there is none)."""

    number: int
    local_start: datetime
    start: datetime | None
    slot: Slot | None

    @property
    def date(self) -> date:
        return self.local_start.date()


@dataclass(frozen=True)
class Conflict:
    week: Week
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "week": self.week.number,
            "date": self.week.date.isoformat(),
            "start": self.week.start.isoformat() if self.week.start else None,
            "reason": self.reason,
            "message": WEEK_REASONS[self.reason],
        }


class SeriesConflict(ApplicationError):
    """Some weeks cannot be held; nothing was. `conflicts` names them, with why."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        weeks = ", ".join(str(c.week.number) for c in conflicts)
        super().__init__(
            "series_conflict",
            f"Week {weeks} cannot be booked; nothing was held. Skip "
            f"{'it' if len(conflicts) == 1 else 'them'} to book the other weeks.",
            status=409,
            reason="weeks_unavailable",
        )
        self.conflicts = [c.as_dict() for c in conflicts]
        self.extra = {"conflicts": self.conflicts}


@dataclass(frozen=True)
class SeriesHold:
    series: BookingSeries
    bookings: list[Booking]
    payment_url: str


def max_weeks(first: Slot, *, now: datetime) -> int:
    """The most weeks a series starting with `first` may span: the tutor's cap, and no
    week past the availability horizon (no slots exist beyond it yet)."""
    tutor = first.tutor
    within = (horizon_end(tutor, now) - first.start) // timedelta(weeks=1) + 1
    return max(0, min(tutor.max_series_weeks, MAX_SERIES_WEEKS, within))


def series_weeks(first: Slot, *, weeks: int, skip: Iterable[date] = ()) -> list[Week]:
    """The weeks asked for (skipped dates left out), each with the tutor's slot that
    starts at the same wall-clock time that week, if there is one (one query)."""
    zone = first.tutor.zone
    local = first.start.astimezone(zone).replace(tzinfo=None)
    skipped = set(skip)
    asked = []
    for number in range(1, weeks + 1):
        wall = local + timedelta(weeks=number - 1)
        if wall.date() not in skipped:
            asked.append((number, wall, local_to_utc(wall, zone)))
    starts = [start for _, _, start in asked if start is not None]
    slots = {
        s.start: s
        for s in Slot.objects.select_related("tutor", "remote_offering", "in_person_offering")
        .filter(tutor_id=first.tutor_id, start__in=starts, removed_at__isnull=True)
        .exclude(source=SlotSource.PRIVATE)  # a requested time's: its link only
        .order_by()
    }
    return [Week(n, wall, start, slots.get(start) if start else None) for n, wall, start in asked]


def _conflicts(
    weeks: Sequence[Week], *, mode: str, offering_id: int, now: datetime
) -> list[Conflict]:
    """The weeks that cannot be held, by availability.decide over one read of the
    tutor's bookings and busy times across the whole series."""
    found = [
        Conflict(w, "no_such_time" if w.start is None else "no_slot") for w in weeks if not w.slot
    ]
    slots = [(w, w.slot) for w in weeks if w.slot is not None]
    if not slots:
        return found
    tutor: Tutor = slots[0][1].tutor
    busy = busy_bookings(
        tutor_ids=[tutor.pk],
        start=slots[0][1].start,
        end=slots[-1][1].end,
        margin=tutor.travel_buffer,
        only=[(slot.start, slot.end) for _, slot in slots],
    )
    for week, slot in slots:
        slot.tutor = tutor  # the locked row: one tutor, read once
        decision = decide(slot, mode=mode, now=now, busy=busy)
        if isinstance(decision, Closed):
            found.append(Conflict(week, decision.reason))
        elif decision.offerings[mode].pk != offering_id:
            found.append(Conflict(week, "other_offering"))
    return sorted(found, key=lambda c: c.week.number)


def _hold_rows(
    *,
    slot_id: int,
    mode: str,
    weeks: int,
    skip: Sequence[date],
    student_name: str,
    student_email: str,
    student_timezone: str,
    notes: str,
    client: str,
    now: datetime,
) -> tuple[BookingSeries, list[Booking], str | None]:
    email = student_email.strip().lower()
    digest = client_digest(client)
    with transaction.atomic():
        # The single hold's locks, in its order: the tutor's row (holds serialise per
        # tutor), then the student's and the client's advisory locks.
        first = _slot_for_booking(
            slot_id,
            mode,
            lock_tutor=True,
            lock_keys=hold_lock_keys(email, digest),
        )
        most = max_weeks(first, now=now)
        if weeks < 2 or weeks > most:
            limit = f"From 2 to {most} weeks from this slot." if most >= 2 else "Not possible."
            raise ApplicationError(
                "invalid",
                f"This series can have at most {most} weeks.",
                fields={"weeks": [limit]},
            )
        offering = first.offering_for(mode)
        if offering is None:
            raise SlotUnavailable(reason="not_offered")
        asked = series_weeks(first, weeks=weeks, skip=skip)
        if not asked or asked[0].number != 1:
            raise ApplicationError(
                "invalid",
                "The first week is the slot you picked: it cannot be skipped.",
                fields={"skip": ["The first week cannot be skipped."]},
            )
        if conflicts := _conflicts(asked, mode=mode, offering_id=offering.pk, now=now):
            raise SeriesConflict(conflicts)
        around = sql.busy_around(
            first,
            margin=first.tutor.travel_buffer,
            holds_of=email,
            client=digest,
            tutor_share=True,
            now=now,
        )
        # The series counts as its weeks against the limits on unpaid holds.
        hold_limits_check(
            around,
            digest=digest,
            held=len(asked),
            remedy="Pay for or cancel them first, or wait for the holds to expire.",
        )
        series = BookingSeries.objects.create(
            tutor=first.tutor,
            offering=offering,
            mode=mode,
            student_name=student_name.strip(),
            student_email=email,
            student_timezone=student_timezone,
            weeks=weeks,
            first_start=first.start,
            timezone=first.tutor.timezone,
        )
        expires = now + timedelta(minutes=settings.BOOKING_HOLD_MINUTES)
        bookings = [
            Booking(
                tutor=first.tutor,
                slot=week.slot,
                offering=offering,
                mode=mode,
                student_name=series.student_name,
                student_email=email,
                student_timezone=student_timezone,
                notes=notes.strip(),
                price_amount=offering.price_amount,
                currency=offering.currency,
                status=BookingStatus.PENDING_PAYMENT,
                hold_expires_at=expires,
                client_digest=digest,
                series=series,
                series_week=week.number,
            )
            for week in asked
        ]
        Booking.objects.bulk_create(bookings)
        BookingEvent.objects.bulk_create(
            BookingEvent(
                booking=b,
                to_status=BookingStatus.PENDING_PAYMENT,
                actor=Actor.STUDENT,
                reason="held",
                data={"series": str(series.pk), "week": b.series_week},
                at=now,
            )
            for b in bookings
        )
        url = payment_port().open_series_checkout(series, bookings)
    return series, bookings, url


def series_hold(
    *,
    slot_id: int,
    mode: str,
    weeks: int,
    student_name: str,
    student_email: str,
    now: datetime,
    skip: Sequence[date] = (),
    notes: str = "",
    student_timezone: str = "",
    client: str = "",
) -> SeriesHold:
    """Hold `slot_id` and the same wall-clock time each following week, `weeks` weeks
    in all (skipped dates left out), all or nothing, and open the one checkout that
    pays for them. SeriesConflict names the weeks that cannot be held; nothing is.

    As with a single hold, the checkout is opened after the transaction (a network
    call), and the holds are released again if it cannot be.
    """
    try:
        series, bookings, url = _hold_rows(
            slot_id=slot_id,
            mode=mode,
            weeks=weeks,
            skip=skip,
            student_name=student_name,
            student_email=student_email,
            student_timezone=student_timezone,
            notes=notes,
            client=client,
            now=now,
        )
    except IntegrityError:
        # A constraint caught a race the checks missed (they run under the tutor's
        # lock, so only a writer that skips it can get here): nothing was held.
        raise ApplicationError(
            "series_conflict", "One of these weeks was just taken; nothing was held.", status=409
        ) from None
    if url is None:
        try:
            url = payment_port().start_series_checkout(series)
        except PaymentUnavailable:
            for booking in bookings:
                booking_release(booking_id=booking.pk, reason="checkout_failed", now=now)
            raise
    return SeriesHold(series=series, bookings=bookings, payment_url=url)


# --- reading ----------------------------------------------------------------------------


def series_by_token(token: str) -> BookingSeries:
    key = key_of("series", token)
    series = (
        BookingSeries.objects.select_related("tutor", "offering").filter(manage_key=key).first()
        if key
        else None
    )
    if series is None:
        raise NotFound("No such series.")
    return series


def series_sessions(series: BookingSeries) -> list[Booking]:
    """The series' bookings, week by week, with what their answers show."""
    return list(
        Booking.objects.filter(series=series)
        .select_related("slot", "tutor", "offering")
        .order_by("series_week")
    )


# --- confirming and changing --------------------------------------------------------------


def series_cancel_rest(
    *, series: BookingSeries, now: datetime, actor: str = Actor.STUDENT
) -> list[Cancellation]:
    """Cancel every session of the series that has not started, each refunded per the
    policy (booking_cancel, one by one: each is its own change, safe to repeat), then
    tell student and tutor once about all of them (not once per week)."""
    rest = Booking.objects.filter(
        series=series,
        status__in=(BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED),
        slot__start__gt=now,
    ).order_by("series_week")
    done = [
        booking_cancel(booking_id=pk, actor=actor, now=now, reason=REST_OF_SERIES, tell=False)
        for pk in list(rest.values_list("pk", flat=True))
    ]
    # Read back from the cancel events, not from `done`: a run that crashed before
    # telling is told by the next one (which finds nothing left to cancel).
    told = (
        Booking.objects.filter(
            series=series,
            status=BookingStatus.CANCELLED,
            events__to_status=BookingStatus.CANCELLED,
            events__from_status=BookingStatus.CONFIRMED,  # a dropped hold is told nothing
            events__reason=REST_OF_SERIES,
        )
        .select_related("slot")
        .order_by("series_week")
        .distinct()
    )
    with transaction.atomic():
        notifications.notify_rest_cancelled(list(told), now=now, by=actor)
    return done


def series_confirm(
    *, series_id: Any, now: datetime, reason: str, data: dict[str, Any] | None = None
) -> list[tuple[Booking, str]]:
    """The series' one payment arrived: confirm every session in it (booking_confirm,
    which repeats safely). Returns the sessions that cannot be had any more, with why
    ("taken": the hold expired and the slot went; "cancelled"), for the payment side to
    refund one by one; the others stand."""
    lost = []
    ids = Booking.objects.filter(series_id=series_id).order_by("series_week")
    for pk in list(ids.values_list("pk", flat=True)):
        try:
            booking_confirm(booking_id=pk, now=now, reason=reason, data=data)
        except SlotUnavailable:
            lost.append((pk, "taken"))
        except ApplicationError:
            lost.append((pk, "cancelled"))
    by_id = {b.pk: b for b in Booking.objects.filter(pk__in=[pk for pk, _ in lost])}
    return [(by_id[pk], why) for pk, why in lost]


def series_late_payment_refunded(*, lost: Sequence[tuple[Booking, str]], now: datetime) -> None:
    """The series' one payment came too late for the weeks `lost` (each with why,
    from series_confirm): each is recorded as refunded, and the student is told once,
    listing them, with the total (the payment side refunds them week by week)."""
    if not lost:
        return
    for booking, why in lost:
        booking_late_payment_refunded(
            booking_id=booking.pk, amount=booking.price_amount, why=why, now=now, tell=False
        )
    sessions = sorted((b for b, _ in lost), key=lambda b: b.series_week or 0)
    whys = {why for _, why in lost}
    notifications.notify_late_payment_refunded(
        sessions[0],
        now=now,
        amount=sum(b.price_amount for b in sessions),
        why="cancelled" if whys == {"cancelled"} else "taken",
        sessions=sessions,
    )


def series_payment_refused(
    *, series_id: Any, anchor_id: Any, amount: int, currency: str, why: str, now: datetime
) -> None:
    """Money that cannot pay for the series came through its checkout: every session
    still held is released (the checkout is used up), and student and tutor are told
    once, about the series' first session."""
    held = Booking.objects.filter(series_id=series_id, status=BookingStatus.PENDING_PAYMENT)
    for pk in list(held.exclude(pk=anchor_id).values_list("pk", flat=True)):
        booking_release(booking_id=pk, reason=f"payment refused: {why}", now=now)
    booking_payment_refused(
        booking_id=anchor_id, amount=amount, currency=currency, why=why, own_checkout=True, now=now
    )


def series_release(*, series_id: Any, reason: str, now: datetime, expire: bool) -> None:
    """The series' checkout closed unpaid (`expire`) or failed: every session still
    held ends, as a single hold's would."""
    held = Booking.objects.filter(series_id=series_id, status=BookingStatus.PENDING_PAYMENT)
    for pk in list(held.values_list("pk", flat=True)):
        if expire:
            booking_expire(booking_id=pk, now=now, force=True)
        else:
            booking_release(booking_id=pk, reason=reason, now=now)
