"""What the pages show, shaped for templates: money, zones, days, and a few small reads.

Business rules stay in services and selectors; this module only formats their results
and asks them questions (which slots are open, what a rule would create).
"""

import itertools
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet

from bookings import selectors
from bookings.availability import RuleShape, local_to_utc
from bookings.availability import rule_preview as rule_preview_slots
from bookings.ics import map_link
from bookings.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingStatus,
    Mode,
    Offering,
    Slot,
    Tutor,
    is_timezone,
)
from bookings.money import format_money
from bookings.presenters import StudentLinks, booking_facts
from bookings.selectors import OpenSlot

# The picker shows today and the 27 days after it, in the visitor's zone.
PICKER_DAYS = 28
# Fetch a day more than the picker shows: "today" in Tokyo is already tomorrow in UTC.
PICKER_FETCH = timedelta(days=PICKER_DAYS + 1)

# Currencies whose minor unit is the unit itself (Stripe's list, the common ones).

# Offered without JavaScript; the script replaces this list with every zone the browser knows.
COMMON_ZONES = [
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Kyiv",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Sydney",
    "Pacific/Auckland",
]

WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]


money = format_money


def zone_or(value: str | None, fallback: str) -> str:
    """A valid IANA zone name from user input, else the fallback."""
    value = (value or "").strip()
    return value if value and is_timezone(value) else fallback


def zone_choices(*extra: str) -> list[str]:
    return sorted(set(COMMON_ZONES) | {z for z in extra if z})


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mode_label(mode: str) -> str:
    return Mode(mode).label


# --- the slot picker ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModePrice:
    mode: str
    label: str
    price: str


@dataclass(frozen=True)
class SlotRow:
    """One open slot as a page lists it."""

    id: int
    start: datetime
    end: datetime
    modes: list[ModePrice]

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass
class Day:
    day: date
    slots: list[Any] = field(default_factory=list)


def slot_row(item: OpenSlot) -> SlotRow:
    return SlotRow(
        id=item.slot.pk,
        start=item.slot.start,
        end=item.slot.end,
        modes=[
            ModePrice(mode, mode_label(mode), money(o.price_amount, o.currency))
            for mode, o in item.offerings.items()
        ],
    )


def by_day(rows: Iterable[Any], zone: zoneinfo.ZoneInfo, key: str = "start") -> list[Day]:
    """Rows (sorted by time) grouped under the local date they start on in `zone`."""
    return [
        Day(day, list(group))
        for day, group in itertools.groupby(
            rows, key=lambda r: getattr(r, key).astimezone(zone).date()
        )
    ]


def picker_slots(
    *, tutor: Tutor, now: datetime, mode: str | None = None, duration: timedelta | None = None
) -> list[SlotRow]:
    """The open slots of the picker's four weeks (optionally one mode and length)."""
    items = selectors.open_slots(start=now, end=now + PICKER_FETCH, now=now, tutor=tutor, mode=mode)
    rows = [slot_row(item) for item in items]
    if mode:
        rows = [SlotRow(r.id, r.start, r.end, [m for m in r.modes if m.mode == mode]) for r in rows]
    if duration is not None:
        rows = [r for r in rows if r.end - r.start == duration]
    return rows


def picker_data(rows: Sequence[SlotRow]) -> dict[str, Any]:
    """Everything the picker script needs, embedded in the page (no request per slot)."""
    return {
        "days": PICKER_DAYS,
        "slots": [
            {
                "id": r.id,
                "start": iso_utc(r.start),
                "end": iso_utc(r.end),
                "modes": {m.mode: m.price for m in r.modes},
            }
            for r in rows
        ],
    }


def plain_days(
    rows: Sequence[SlotRow], *, zone: zoneinfo.ZoneInfo, mode: str, now: datetime
) -> list[Day]:
    """The picker's days (today and 27 more, in `zone`) as a list, for no-JavaScript."""
    last_day = now.astimezone(zone).date() + timedelta(days=PICKER_DAYS)
    rows = [r for r in rows if r.start.astimezone(zone).date() < last_day]
    if mode:
        rows = [r for r in rows if any(m.mode == mode for m in r.modes)]
    return by_day(rows, zone)


def open_slot(*, tutor: Tutor, slot_id: int, now: datetime) -> SlotRow | None:
    """This slot, if it can be booked right now (in at least one mode)."""
    slot = selectors.slot_of(tutor=tutor, slot_id=slot_id)
    if slot is None or slot.removed_at is not None:
        return None
    items = selectors.open_slots(
        start=slot.start, end=slot.start + timedelta(seconds=1), now=now, tutor=tutor
    )
    return next((slot_row(i) for i in items if i.slot.pk == slot.pk), None)


def alternatives(
    *, tutor: Tutor, now: datetime, near: datetime | None, mode: str | None, limit: int = 8
) -> list[SlotRow]:
    """Open slots to offer when the chosen one was just taken: the ones closest to it."""
    rows = picker_slots(tutor=tutor, now=now, mode=mode or None)
    if near is not None:
        rows = sorted(rows, key=lambda r: abs((r.start - near).total_seconds()))[:limit]
        return sorted(rows, key=lambda r: r.start)
    return rows[:limit]


@dataclass(frozen=True)
class OfferingRow:
    mode: str
    label: str
    title: str
    minutes: int
    price: str
    place: dict[str, str] | None
    map_url: str | None


def offering_rows(offerings: Iterable[Offering]) -> list[OfferingRow]:
    """Remote first, then in person; shorter sessions first within a mode."""
    ordered = sorted(offerings, key=lambda o: (o.mode != Mode.REMOTE, o.duration_minutes))
    return [
        OfferingRow(
            mode=o.mode,
            label=mode_label(o.mode),
            title=o.title,
            minutes=o.duration_minutes,
            price=money(o.price_amount, o.currency),
            place=o.place,
            map_url=map_link(o.place_address) if o.place else None,
        )
        for o in ordered
    ]


# --- a booking, as its student sees it -------------------------------------------------------


@dataclass(frozen=True)
class BookingPage:
    """The core facts (bookings.presenters) formatted for the student's pages."""

    booking: Booking
    state: str  # confirmed | pending | hold_expired | cancelled | completed | no_show
    zone: str
    price: str
    refund: str | None
    place: dict[str, str] | None
    map_url: str | None
    video_url: str | None
    free_cancellation_until: datetime
    can_reschedule: bool
    reschedule_closed_reason: str
    links: StudentLinks | None


def booking_page(booking: Booking, *, now: datetime) -> BookingPage:
    facts = booking_facts(booking, now=now)
    closed = ""
    if facts.state == "confirmed" and not facts.can_reschedule:
        closed = (
            f"Sessions can be moved up to {booking.tutor.full_refund_hours} hours before they "
            "start; this one is too close."
        )
    return BookingPage(
        booking=booking,
        state=facts.state,
        zone=zone_or(booking.student_timezone, booking.tutor.timezone),
        price=money(booking.price_amount, booking.currency),
        refund=None
        if facts.refund_amount is None
        else money(facts.refund_amount, booking.currency),
        place=facts.place,
        map_url=facts.map_url,
        video_url=facts.video_url,
        free_cancellation_until=facts.free_cancellation_until,
        can_reschedule=facts.can_reschedule,
        reschedule_closed_reason=closed,
        links=facts.links,
    )


# --- the tutor's side -------------------------------------------------------------------------


def tutor_upcoming(*, tutor: Tutor, now: datetime) -> list[Day]:
    """Held and confirmed sessions from the start of today (tutor's zone), by day."""
    today = datetime.combine(now.astimezone(tutor.zone).date(), time(), tutor.zone)
    bookings = selectors.tutor_bookings(
        tutor=tutor, statuses=list(ACTIVE_STATUSES), start_from=today.astimezone(UTC)
    )
    return by_day(bookings, tutor.zone)


def tutor_awaiting_outcome(*, tutor: Tutor, now: datetime) -> QuerySet[Booking]:
    """Confirmed sessions that have started and still need completed / no-show."""
    return selectors.tutor_bookings(
        tutor=tutor,
        statuses=[BookingStatus.CONFIRMED],
        start_from=now - timedelta(days=60),
        start_to=now,
    )


@dataclass(frozen=True)
class TutorSlotRow:
    slot: Slot
    booking: Booking | None

    @property
    def start(self) -> datetime:
        return self.slot.start

    @property
    def modes(self) -> list[str]:
        return [mode_label(m) for m in self.slot.offerings()]


def tutor_slots(*, tutor: Tutor, now: datetime, days: int = PICKER_DAYS) -> list[Day]:
    """The tutor's active slots (open or booked) for the next `days`, by day."""
    slots = list(
        selectors.tutor_slot_rows(tutor=tutor, end_after=now, start_to=now + timedelta(days=days))
    )
    bookings = selectors.active_bookings_of(slots)
    return by_day([TutorSlotRow(s, bookings.get(s.pk)) for s in slots], tutor.zone)


def local_day_start(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The instant a local calendar day begins (midnight, or the first moment after a gap)."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def local_moment(day: date, at: time, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """A local wall-clock time as UTC, or None when clocks skip it."""
    return local_to_utc(datetime.combine(day, at), zone)


@dataclass(frozen=True)
class PreviewSlot:
    start: datetime
    end: datetime
    note: str  # "" when the rule would create it


@dataclass(frozen=True)
class RulePreview:
    days: list[Day]
    weeks: int
    created: int
    skipped: int


def rule_preview(
    *,
    tutor: Tutor,
    now: datetime,
    weekdays: list[int],
    start_time: time,
    end_time: time,
    duration: timedelta,
    valid_from: date | None = None,
    valid_until: date | None = None,
    rule_id: int | None = None,
    weeks: int = 2,
) -> RulePreview:
    """The slots a rule would give over the next `weeks`, without writing anything:
    availability.rule_preview() applies the materialiser's own rules."""
    shape = RuleShape(
        id=rule_id,
        weekdays=weekdays,
        start_time=start_time,
        end_time=end_time,
        duration=duration,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    last_day = now.astimezone(tutor.zone).date() + timedelta(weeks=weeks, days=-1)
    until = local_day_start(last_day + timedelta(days=1), tutor.zone)
    rows = [
        PreviewSlot(s, e, note)
        for s, e, note in rule_preview_slots(tutor, shape, now=now, until=until)
    ]
    created = sum(1 for r in rows if not r.note)
    return RulePreview(by_day(rows, tutor.zone), weeks, created, len(rows) - created)
