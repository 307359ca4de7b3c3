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

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from bookings import selectors, zones
from bookings.availability import Closed, RuleShape, local_to_utc
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
from bookings.policy import slot_free_cancellation_until
from bookings.presenters import StudentLinks, booking_facts
from bookings.selectors import OpenSlot

# The tutor's slot list shows today and the 27 days after it, in the tutor's zone.
PICKER_DAYS = 28


def horizon_days() -> int:
    """The student's picker (and its no-JavaScript list) spans the whole materialised
    horizon: today and the days after it, in the visitor's zone."""
    return int(settings.SLOT_HORIZON_WEEKS) * 7


def picker_fetch() -> timedelta:
    """Fetch a day more than the picker shows: "today" in Tokyo is already tomorrow in UTC."""
    return timedelta(days=horizon_days() + 1)


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
    """A valid IANA zone name from user input (its current name), else the fallback."""
    value = zones.canonical((value or "").strip())
    return value if value and is_timezone(value) else zones.canonical(fallback)


def zone_choices(*extra: str, now: datetime | None = None) -> list[tuple[str, str]]:
    """The zone select's options without JavaScript, each with its local time and offset
    now ("Europe/Berlin — 14:05, UTC+1"); the script offers every zone the same way."""
    at = now or datetime.now(UTC)
    names = sorted(set(COMMON_ZONES) | {zones.canonical(z) for z in extra if z})
    return [(name, zone_option_label(name, at)) for name in names]


def zone_option_label(name: str, now: datetime) -> str:
    local = now.astimezone(zoneinfo.ZoneInfo(name))
    offset = local.utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    utc = "UTC" if not minutes else f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{name.replace('_', ' ')} — {local:%H:%M}, {utc}"


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
    """The open slots of the picker's horizon (optionally one mode and length)."""
    items = selectors.open_slots(
        start=now, end=now + picker_fetch(), now=now, tutor=tutor, mode=mode
    )
    rows = [slot_row(item) for item in items]
    if mode:
        rows = [SlotRow(r.id, r.start, r.end, [m for m in r.modes if m.mode == mode]) for r in rows]
    if duration is not None:
        rows = [r for r in rows if r.end - r.start == duration]
    return rows


def picker_data(rows: Sequence[SlotRow], *, refund_hours: int | None = None) -> dict[str, Any]:
    """Everything the picker script needs, embedded in the page (no request per slot).

    `refund_hours` (the tutor's free-cancellation window) lets the script mark the slots
    that are already inside it."""
    return {
        "days": horizon_days(),
        "refund_hours": refund_hours,
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
    """The picker's days (the whole horizon, in `zone`) as a list, for no-JavaScript."""
    last_day = now.astimezone(zone).date() + timedelta(days=horizon_days())
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
    # False when no open slot sells it: advertised, it could not be booked.
    bookable: bool = True


def offering_rows(
    offerings: Iterable[Offering], *, open_slots: Sequence[SlotRow] | None = None
) -> list[OfferingRow]:
    """Remote first, then in person; shorter sessions first within a mode.

    Given the page's `open_slots`, an offering none of them sells (its mode at its
    length) is marked not bookable.
    """
    ordered = sorted(offerings, key=lambda o: (o.mode != Mode.REMOTE, o.duration_minutes))
    sold = None
    if open_slots is not None:
        sold = {(m.mode, r.minutes) for r in open_slots for m in r.modes}
    return [
        OfferingRow(
            mode=o.mode,
            label=mode_label(o.mode),
            title=o.title,
            minutes=o.duration_minutes,
            price=money(o.price_amount, o.currency),
            place=o.place,
            map_url=map_link(o.place_address) if o.place else None,
            bookable=sold is None or (o.mode, o.duration_minutes) in sold,
        )
        for o in ordered
    ]


# --- the cancellation policy where it bites ---------------------------------------------------


@dataclass(frozen=True)
class CancellationTerms:
    """What bookings.policy means for one time, stated before and after booking it."""

    until: datetime  # the last moment a cancellation refunds in full
    label: str  # "Tue 3 Dec, 18:00 Berlin time": zones.when(), as the emails write it
    free: bool  # that moment is still ahead
    hours: int  # the tutor's window ("inside the 24-hour window")


def refund_line(*, tutor: Tutor, now: datetime) -> datetime:
    """Slots that start before this moment are already past free cancellation."""
    return now + (now - slot_free_cancellation_until(tutor=tutor, start=now))


def cancellation_terms(
    *, tutor: Tutor, start: datetime, zone: str, now: datetime
) -> CancellationTerms:
    until = slot_free_cancellation_until(tutor=tutor, start=start)
    return CancellationTerms(
        until=until,
        label=zones.when(until, zone, short=True),
        free=now <= until,
        hours=tutor.full_refund_hours,
    )


# --- in person: the place and its own time --------------------------------------------------


@dataclass(frozen=True)
class PlaceTime:
    """Where an in-person session meets, and its time there (New York) for a student
    who reads the page in another zone."""

    name: str
    address: str
    map_url: str
    start: datetime
    end: datetime
    zone: str
    label: str  # "New York time"
    differs: bool  # the student's zone shows another wall-clock time


def place_time(
    place: dict[str, str] | None, *, start: datetime, end: datetime, zone: str
) -> PlaceTime | None:
    if not place:
        return None
    here, there = zoneinfo.ZoneInfo(zone), zoneinfo.ZoneInfo(zones.PLACE_ZONE)
    return PlaceTime(
        name=place.get("name", ""),
        address=place.get("address", ""),
        map_url=map_link(place.get("address", "")),
        start=start,
        end=end,
        zone=zones.PLACE_ZONE,
        label=zones.zone_label(zones.PLACE_ZONE),
        differs=start.astimezone(here).utcoffset() != start.astimezone(there).utcoffset(),
    )


def chosen_place(*, tutor: Tutor, chosen: SlotRow, zone: str, mode: str = "") -> PlaceTime | None:
    """The meeting place of a slot offered in person (unless another mode was picked)."""
    if mode and mode != Mode.IN_PERSON:
        return None
    if not any(m.mode == Mode.IN_PERSON for m in chosen.modes):
        return None
    offering = next(
        (o for o in tutor.offerings.all() if o.mode == Mode.IN_PERSON and o.place), None
    )
    if offering is None:
        return None
    return place_time(offering.place, start=chosen.start, end=chosen.end, zone=zone)


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
    terms: CancellationTerms
    place_time: PlaceTime | None


def booking_page(booking: Booking, *, now: datetime) -> BookingPage:
    facts = booking_facts(booking, now=now)
    zone = zone_or(booking.student_timezone, booking.tutor.timezone)
    closed = ""
    if facts.state == "confirmed" and not facts.can_reschedule:
        closed = (
            f"Sessions can be moved up to {booking.tutor.full_refund_hours} hours before they "
            "start; this one is too close."
        )
    return BookingPage(
        booking=booking,
        state=facts.state,
        zone=zone,
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
        terms=cancellation_terms(tutor=booking.tutor, start=booking.slot.start, zone=zone, now=now),
        place_time=place_time(
            facts.place, start=booking.slot.start, end=booking.slot.end, zone=zone
        ),
    )


# --- the tutor's side -------------------------------------------------------------------------


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
    state: selectors.SlotState | None = None

    @property
    def start(self) -> datetime:
        return self.slot.start

    @property
    def modes(self) -> list[str]:
        return [mode_label(m) for m in self.slot.offerings()]

    @property
    def hidden(self) -> str:
        """Why students cannot book this unbooked slot right now, in the tutor's words
        ("" when they can)."""
        if self.booking is not None or self.state is None:
            return ""
        decision = self.state.decision
        if isinstance(decision, Closed) and decision.reason != "booked":
            return HIDDEN_BECAUSE.get(decision.reason, decision.message)
        return ""

    @property
    def in_person_hidden(self) -> str:
        """Why an open slot is offered as remote only just now ("" otherwise)."""
        if self.booking is not None or self.state is None or self.hidden:
            return ""
        closed = self.state.in_person_closed
        return IN_PERSON_HIDDEN_BECAUSE.get(closed.reason, closed.message) if closed else ""


# availability.CLOSED's reasons as the tutor reads them on their slot list.
HIDDEN_BECAUSE = {
    "past": "Started: no longer bookable",
    "too_soon": "Too soon to book: inside your minimum notice",
    "travel_buffer": "Hidden from students: your travel buffer around an in-person session",
    "tutor_busy": "Hidden from students: you are busy then in one of your calendars",
    "not_offered": "Hidden from students: its session types are no longer offered",
    "withdrawn": "Withdrawn",
}
IN_PERSON_HIDDEN_BECAUSE = {
    "travel_buffer": "In person hidden: your travel buffer around another session",
    "tutor_busy": "In person hidden: you are busy close to it in one of your calendars",
}


def tutor_slots(*, tutor: Tutor, now: datetime, days: int = PICKER_DAYS) -> list[Day]:
    """The tutor's active slots (open or booked) for the next `days`, by day, each with
    what a student is told about it now (availability.decide: notice, travel buffer,
    busy calendars), so the tutor sees the same page students do, and why it differs."""
    slots = list(
        selectors.tutor_slot_rows(tutor=tutor, end_after=now, start_to=now + timedelta(days=days))
    )
    bookings = selectors.active_bookings_of(slots)
    states = selectors.tutor_slot_states(tutor=tutor, slots=slots, now=now)
    rows = [TutorSlotRow(s, bookings.get(s.pk), states.get(s.pk)) for s in slots]
    return by_day(rows, tutor.zone)


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


def clock(at: time) -> str:
    """6:00 PM"""
    return at.strftime("%I:%M %p").lstrip("0")


def rule_label(weekdays: Iterable[int], start_time: time, end_time: time) -> str:
    names = dict(WEEKDAYS)
    days = ", ".join(names[d] for d in sorted(weekdays) if d in names)
    return f"{days} {clock(start_time)}–{clock(end_time)}"


def _windows_meet(a: Any, b: Any) -> bool:
    """Two weekly rules (or rule shapes) want some of the same wall-clock time."""
    if not set(a.weekdays) & set(b.weekdays):
        return False
    if not (a.start_time < b.end_time and b.start_time < a.end_time):
        return False
    if a.valid_until and b.valid_from and a.valid_until < b.valid_from:
        return False
    return not (b.valid_until and a.valid_from and b.valid_until < a.valid_from)


def rule_warnings(
    *, tutor: Tutor, now: datetime, rule: Any, duration: timedelta, weeks: int = 8
) -> list[str]:
    """What a tutor should hear about a weekly rule they save (or preview): other rules
    it overlaps, time its window leaves unused, and the slots it cannot have over the
    next `weeks` (the materialiser's rules, as the preview shows them)."""
    if not rule.is_active:
        return ["This rule is paused: it gives no slots until you make it active again."]
    warnings = []
    others = [
        r
        for r in selectors.tutor_rules(tutor=tutor)
        if r.is_active and r.pk != rule.pk and _windows_meet(rule, r)
    ]
    for other in others:
        older = rule.pk is not None and rule.pk < other.pk
        label = rule_label(other.weekdays, other.start_time, other.end_time)
        winner = "this rule's" if older else "that rule's"
        warnings.append(
            f"It overlaps your weekly rule {label}: where both want the same time, "
            f"the older rule wins, so {winner} slots are used there."
        )
    minutes = duration.total_seconds() // 60
    window = (
        datetime.combine(date.min, rule.end_time) - datetime.combine(date.min, rule.start_time)
    ).total_seconds() // 60
    fits, rest = divmod(int(window), int(minutes))
    span = f"{clock(rule.start_time)}–{clock(rule.end_time)}"
    if not fits:
        warnings.append(
            f"The window {span} is shorter than one {int(minutes)}-minute session: "
            "this rule gives no slots."
        )
        return warnings
    if rest:
        warnings.append(
            f"The window {span} fits {fits} session{'s' if fits != 1 else ''} of "
            f"{int(minutes)} minutes: its last {rest} minutes stay free."
        )
    preview = rule_preview(
        tutor=tutor,
        now=now,
        weekdays=list(rule.weekdays),
        start_time=rule.start_time,
        end_time=rule.end_time,
        duration=duration,
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
        rule_id=rule.pk,
        weeks=weeks,
    )
    notes = [s.note for d in preview.days for s in d.slots if s.note]
    blocked = notes.count("blocked")
    overlapping = len(notes) - blocked
    if overlapping:
        warnings.append(
            f"{overlapping} of its slots in the next {weeks} weeks overlap other slots "
            "(an older rule's, a one-off or a booked one) and are left out."
        )
    if blocked:
        warnings.append(
            f"{blocked} of its slots in the next {weeks} weeks fall on your days off "
            "and are left out."
        )
    return warnings


@dataclass(frozen=True)
class EarningsRow:
    month: date
    currency: str
    paid: str
    refunded: str
    net: str


def earnings(*, tutor: Tutor, now: datetime, months: int = 12) -> list[EarningsRow]:
    """The last `months` calendar months (in the tutor's zone), newest first."""
    today = now.astimezone(tutor.zone).date()
    first = today.replace(day=1)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    since = local_day_start(first, tutor.zone)
    return [
        EarningsRow(
            month=row.month,
            currency=row.currency.upper(),
            paid=money(row.paid, row.currency),
            refunded=money(row.refunded, row.currency),
            net=money(row.net, row.currency),
        )
        for row in selectors.tutor_earnings(tutor=tutor, since=since)
    ]


def blocks_with_bookings(
    *, tutor: Tutor, blocks: Sequence[Any], now: datetime
) -> list[tuple[Any, int]]:
    """Each blocked period with how many upcoming held or confirmed sessions it covers
    (a block leaves them standing). One query."""
    if not blocks:
        return []
    upcoming = list(
        selectors.tutor_bookings(tutor=tutor, statuses=list(ACTIVE_STATUSES), start_from=now)
    )
    return [
        (b, sum(1 for x in upcoming if x.slot.start < b.end and x.slot.end > b.start))
        for b in blocks
    ]


def session_label(booking: Booking, zone: zoneinfo.ZoneInfo) -> str:
    """One line about a session for a checkbox: "Thu, Dec 10, 6:00 PM–7:00 PM · Sam · Remote"."""
    start, end = booking.slot.start.astimezone(zone), booking.slot.end.astimezone(zone)
    when = f"{start:%a, %b} {start.day}, {clock(start.time())}–{clock(end.time())}"
    label = f"{when} · {booking.student_name} · {mode_label(booking.mode)}"
    if booking.status == BookingStatus.PENDING_PAYMENT:
        label += " · awaiting payment"
    return label


def getting_started(*, tutor: Tutor, now: datetime) -> list[tuple[str, str]]:
    """What a new tutor still has to do before students can book them: (step, where)."""
    steps = []
    if not selectors.tutor_offerings(tutor=tutor, active_only=True).exists():
        steps.append(("Add a session type and its price", reverse("web:tutor-offerings")))
    if not selectors.tutor_slot_rows(tutor=tutor, start_from=now).exists():
        where = reverse("web:tutor-availability") + "#add-rule"
        steps.append(("Add the weekly times you teach (or one-off slots)", where))
    return steps
