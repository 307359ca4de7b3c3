"""Which times a tutor is bookable: rules → concrete slots, and the rules that hide slots.

Two pure functions hold the rules and are shared by every caller:
- rule_candidates(): the UTC (start, end) pairs a weekly wall-clock rule produces;
- decide(): whether one slot can be booked right now and in which modes, or why not,
  given the tutor's other active bookings and busy times (notice, one booking per slot,
  travel buffer, the tutor's own calendars).
"""

import bisect
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, CharField, Q, UUIDField, Value

from .models import (
    ACTIVE_STATUSES,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BusyInterval,
    Mode,
    Offering,
    Slot,
    SlotRemoval,
    SlotSource,
    Tutor,
)

logger = logging.getLogger(__name__)


# --- wall clock → UTC ---------------------------------------------------------------------


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant a naive wall-clock time names in `zone`, or None if it never occurs.

    A time skipped by a spring-forward change does not exist: it is refused rather than
    shifted. A time repeated by a fall-back change is taken at its first occurrence
    (fold=0), so it is used once.
    """
    aware = local.replace(tzinfo=zone, fold=0)
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != local:
        return None
    return as_utc


def rule_candidates(
    *,
    weekdays: Iterable[int],
    start_time: time,
    end_time: time,
    duration: timedelta,
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
) -> Iterator[tuple[datetime, datetime]]:
    """Back-to-back slots of `duration` inside the local window on each matching day.

    Every slot starts and ends inside the window as read on the wall clock that day,
    whatever daylight-saving does: a slot a DST change would stretch past the window's
    end, or push onto the previous slot, is left out.
    """
    days = set(weekdays)
    day = first_day
    while day <= last_day:
        if day.isoweekday() in days:
            window_end = datetime.combine(day, end_time)
            local = datetime.combine(day, start_time)
            previous_end: datetime | None = None
            while local + duration <= window_end:
                start = local_to_utc(local, zone)
                if start is not None:
                    end = start + duration
                    end_local = end.astimezone(zone).replace(tzinfo=None)
                    fits = end_local <= window_end
                    if fits and (previous_end is None or start >= previous_end):
                        yield start, end
                        previous_end = end
                local += duration
        day += timedelta(days=1)


def rule_slots(
    *,
    weekdays: Iterable[int],
    start_time: time,
    end_time: time,
    duration: timedelta,
    zone: ZoneInfo,
    now: datetime,
    last_day: date,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> list[tuple[datetime, datetime]]:
    """The future slots one rule gives from today to `last_day` (local dates), within
    the rule's own validity. Shared by the materialiser and the editor's preview."""
    first_day = now.astimezone(zone).date()
    if valid_from:
        first_day = max(first_day, valid_from)
    if valid_until:
        last_day = min(last_day, valid_until)
    candidates = rule_candidates(
        weekdays=weekdays,
        start_time=start_time,
        end_time=end_time,
        duration=duration,
        zone=zone,
        first_day=first_day,
        last_day=last_day,
    )
    return [(start, end) for start, end in candidates if start > now]


# --- the rules that open or hide a slot -------------------------------------------------


@dataclass(frozen=True)
class Busy:
    """An active booking, as far as availability cares; or, with no booking (and no
    slot or mode), a time the tutor is busy in one of their own calendars."""

    booking_id: object
    slot_id: int | None
    tutor_id: int
    mode: str
    start: datetime
    end: datetime

    @classmethod
    def elsewhere(cls, tutor_id: int, start: datetime, end: datetime) -> "Busy":
        return cls(None, None, tutor_id, "", start, end)

    @property
    def is_elsewhere(self) -> bool:
        return self.booking_id is None


def busy_bookings(
    *,
    tutor_ids: Sequence[int],
    start: datetime,
    end: datetime,
    margin: timedelta,
    only: Sequence[tuple[datetime, datetime]] = (),
) -> list[Busy]:
    """Active bookings and busy times (the tutors' own calendars, Busy.elsewhere) of
    these tutors that touch [start - margin, end + margin), and (`only`) one of these
    windows within it, give or take the margin. One query: a UNION ALL of the bookings
    and the busy_by_tutor_end_start index's rows.

    `only` is for a weekly series: ten one-hour windows across ten weeks would
    otherwise read every booking of those ten weeks."""
    near_slot, near = Q(), Q()
    for lo, hi in only:
        near_slot |= Q(slot__start__lt=hi + margin, slot__end__gt=lo - margin)
        near |= Q(start__lt=hi + margin, end__gt=lo - margin)
    bookings = (
        Booking.objects.filter(
            near_slot,
            tutor_id__in=tutor_ids,
            status__in=ACTIVE_STATUSES,
            slot__start__lt=end + margin,
            slot__end__gt=start - margin,
        )
        .order_by()
        .values_list("id", "slot_id", "tutor_id", "mode", "slot__start", "slot__end")
    )
    elsewhere = (
        BusyInterval.objects.filter(
            near, tutor_id__in=tutor_ids, end__gt=start - margin, start__lt=end + margin
        )
        .order_by()
        .annotate(
            no_booking=Value(None, output_field=UUIDField()),
            no_slot=Value(None, output_field=BigIntegerField()),
            no_mode=Value("", output_field=CharField()),
        )
        .values_list("no_booking", "no_slot", "tutor_id", "no_mode", "start", "end")
    )
    return [Busy(*row) for row in bookings.union(elsewhere, all=True)]


@dataclass(frozen=True)
class Open:
    """The slot can be booked, in these modes (each with the offering it sells)."""

    offerings: dict[str, Offering]


@dataclass(frozen=True)
class Closed:
    """The slot cannot be booked (in the asked mode); `reason` is a stable code."""

    reason: str
    message: str


# Why a slot is closed: the codes API clients see in a 409's `reason`.
CLOSED = {
    "withdrawn": "This slot is no longer offered.",
    "past": "This slot has already started.",
    "too_soon": "This slot starts too soon to be booked.",
    "booked": "This slot was just taken.",
    "travel_buffer": "The tutor is travelling to or from an in-person session at that time.",
    "mode_closed": "This slot can no longer be booked in that mode.",
    "not_offered": "Nothing is offered in this slot any more.",
    "tutor_busy": "The tutor is busy at or near that time.",
}


def _closed(reason: str, detail: str = "") -> Closed:
    return Closed(reason, f"{CLOSED[reason]} {detail}".strip())


def decide(
    slot: Slot,
    *,
    now: datetime,
    busy: Iterable[Busy],
    mode: str | None = None,
    ignore_booking_id: object = None,
    notice_from: datetime | None = None,
) -> Open | Closed:
    """Can `slot` be booked at `now` (in `mode`, if given), and if not, why.

    The one place the rules live; the slot list, the hold, a reschedule and money that
    arrives after its hold expired all ask it:
    - a withdrawn slot, one that has started, or one starting sooner than the tutor's
      minimum notice (counted from `notice_from`, default `now`) is closed;
    - a slot with an active booking is closed;
    - an active in-person booking within the travel buffer closes it (the tutor is
      travelling to or from the meeting place);
    - any other active booking within the buffer drops the in-person mode (the tutor
      could not get to the meeting place in time); remote stays open;
    - a busy time from the tutor's own calendars over the slot closes it; one within
      the buffer drops the in-person mode, like a remote booking there. A busy time
      never closes the booking it may sit on: only new holds, moves and late money ask.
    `busy`: the tutor's active bookings and busy times near the slot (busy_bookings,
    sql.busy_around).
    `ignore_booking_id` leaves one booking out, so a booking can be moved next to itself
    and late money for a booking does not find the booking itself.
    """
    tutor = slot.tutor
    if slot.removed_at is not None:
        return _closed("withdrawn")
    if slot.start <= now:
        return _closed("past")
    if slot.start < (notice_from or now) + tutor.min_notice:
        return _closed("too_soon")
    offers = slot.offerings()
    if not offers:
        return _closed("not_offered")
    buffer = tutor.travel_buffer
    buffered = False
    busy_over = busy_near = False
    for b in busy:
        if b.tutor_id != slot.tutor_id:
            continue
        if b.is_elsewhere:
            busy_over = busy_over or (b.start < slot.end and b.end > slot.start)
            busy_near = busy_near or (b.start < slot.end + buffer and b.end > slot.start - buffer)
            continue
        if b.booking_id == ignore_booking_id:
            continue
        if b.slot_id == slot.id:
            return _closed("booked")
        if b.start < slot.end + buffer and b.end > slot.start - buffer:
            if b.mode == Mode.IN_PERSON:
                return _closed("travel_buffer")
            buffered = True
    if busy_over:
        return _closed("tutor_busy")
    # Why in person is out, if it is: travelling to or from a session, or busy nearby.
    why_not_in_person = "travel_buffer" if buffered else "tutor_busy" if busy_near else ""
    if why_not_in_person:
        offers.pop(Mode.IN_PERSON.value, None)
    if mode is not None and mode not in offers:
        if why_not_in_person and mode == Mode.IN_PERSON:
            return _closed(why_not_in_person, "It can still be booked as a remote session.")
        if offers:
            still = ", ".join(Mode(m).label for m in offers)
            return _closed("mode_closed", f"Still open: {still}.")
        return _closed("not_offered")
    return Open(offers) if offers else _closed(why_not_in_person or "not_offered")


# --- materialising rules into slots -------------------------------------------------------


class _Intervals:
    """Sorted, non-overlapping [start, end) intervals with an O(log n) overlap test."""

    def __init__(self, intervals: Iterable[tuple[datetime, datetime]]) -> None:
        self._items = sorted(intervals)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self._items, (end,))
        # Only the interval just before `end` can reach into [start, end).
        return i > 0 and self._items[i - 1][1] > start

    def add(self, start: datetime, end: datetime) -> None:
        bisect.insort(self._items, (start, end))

    def remove(self, start: datetime, end: datetime) -> None:
        self._items.remove((start, end))

    @classmethod
    def merged(cls, intervals: Iterable[tuple[datetime, datetime]]) -> "_Intervals":
        """For inputs that may overlap each other (blocked periods): join them first."""
        joined: list[tuple[datetime, datetime]] = []
        for start, end in sorted(intervals):
            if joined and start <= joined[-1][1]:
                joined[-1] = (joined[-1][0], max(joined[-1][1], end))
            else:
                joined.append((start, end))
        return cls(joined)


@dataclass
class MaterialiseResult:
    created: int = 0
    reactivated: int = 0
    updated: int = 0
    removed: int = 0


def _rule_offerings(rule: AvailabilityRule) -> tuple[Offering | None, Offering | None]:
    by_mode = {o.mode: o for o in rule.offerings.all() if o.is_active}
    return by_mode.get(Mode.REMOTE), by_mode.get(Mode.IN_PERSON)


def horizon_end(tutor: Tutor, now: datetime, weeks: int | None = None) -> datetime:
    weeks = settings.SLOT_HORIZON_WEEKS if weeks is None else weeks
    last_day = now.astimezone(tutor.zone).date() + timedelta(weeks=weeks)
    return datetime.combine(last_day + timedelta(days=1), time(), tutor.zone).astimezone(UTC)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity
class RuleShape:
    """What a weekly rule asks for, saved or not (the editor previews unsaved ones)."""

    id: int | None  # None: a rule not saved yet, which comes after every saved one
    weekdays: Sequence[int]
    start_time: time
    end_time: time
    duration: timedelta
    valid_from: date | None = None
    valid_until: date | None = None


def _claims(
    tutor: Tutor,
    shapes: Iterable[RuleShape],
    *,
    now: datetime,
    until: datetime,
    blocked: "_Intervals",
) -> Iterator[tuple[RuleShape, datetime, datetime, str]]:
    """Every slot each rule (oldest first) calls for before `until`, with why it cannot
    have it ("" if it can): a blocked period, or an older rule's slot already there."""
    last_day = until.astimezone(tutor.zone).date()
    taken = _Intervals(())
    for shape in shapes:
        for start, end in rule_slots(
            weekdays=shape.weekdays,
            start_time=shape.start_time,
            end_time=shape.end_time,
            duration=shape.duration,
            zone=tutor.zone,
            now=now,
            last_day=last_day,
            valid_from=shape.valid_from,
            valid_until=shape.valid_until,
        ):
            if start >= until:
                continue
            if blocked.overlaps(start, end):
                yield shape, start, end, "blocked"
            elif taken.overlaps(start, end):
                yield shape, start, end, "overlaps an earlier rule's slot"
            else:
                taken.add(start, end)
                yield shape, start, end, ""


def _active_rules(
    tutor: Tutor,
) -> list[tuple[RuleShape, AvailabilityRule, Offering | None, Offering | None]]:
    rows = []
    rules = tutor.rules.filter(is_active=True).prefetch_related("offerings").order_by("id")
    for rule in rules:
        remote, in_person = _rule_offerings(rule)
        offering = remote or in_person
        if offering is None:
            continue
        shape = RuleShape(
            id=rule.pk,
            weekdays=rule.weekdays,
            start_time=rule.start_time,
            end_time=rule.end_time,
            duration=offering.duration,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
        )
        rows.append((shape, rule, remote, in_person))
    return rows


def desired_rule_slots(
    tutor: Tutor, *, now: datetime, until: datetime, blocks: Sequence[BlockedPeriod] = ()
) -> dict[tuple[datetime, datetime], tuple[AvailabilityRule, Offering | None, Offering | None]]:
    """Every future slot the tutor's active rules call for before `until`, outside blocks.

    Where two rules would produce overlapping slots, the older rule wins.
    """
    rules = {
        shape: (rule, remote, in_person) for shape, rule, remote, in_person in _active_rules(tutor)
    }
    blocked = _Intervals.merged((b.start, b.end) for b in blocks)
    return {
        (start, end): rules[shape]
        for shape, start, end, why in _claims(tutor, rules, now=now, until=until, blocked=blocked)
        if not why
    }


def rule_preview(
    tutor: Tutor, shape: RuleShape, *, now: datetime, until: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The slots `shape` would have after the materialiser's next run, each with why not
    ("" when it would be created): the materialiser's own rules, without writing.

    An edited rule keeps its place among the others (older rules win overlaps); a new
    one comes last. Besides blocks and older rules, a one-off slot or a booked slot
    already holding the time keeps it.
    """
    others = [s for s, *_ in _active_rules(tutor) if s.id != shape.id]
    ordered = sorted([*others, shape], key=lambda s: (s.id is None, s.id or 0))
    blocks = BlockedPeriod.objects.filter(tutor=tutor, end__gt=now, start__lt=until)
    blocked = _Intervals.merged((b.start, b.end) for b in blocks)
    kept = Slot.objects.filter(tutor=tutor, removed_at__isnull=True, end__gt=now, start__lt=until)
    booked = set(
        Booking.objects.filter(
            tutor=tutor, status__in=ACTIVE_STATUSES, slot__end__gt=now
        ).values_list("slot_id", flat=True)
    )
    rows_kept = list(kept.only("id", "start", "end", "source", "rule_id"))
    # The rule's own booked slots stay where they are: meeting one is no conflict.
    own = {(s.start, s.end) for s in rows_kept if shape.id is not None and s.rule_id == shape.id}
    holding = _Intervals.merged(
        (s.start, s.end)
        for s in rows_kept
        if (s.source != SlotSource.RULE or s.pk in booked) and (s.start, s.end) not in own
    )
    rows: list[tuple[datetime, datetime, str]] = []
    for claimant, start, end, why in _claims(tutor, ordered, now=now, until=until, blocked=blocked):
        if claimant is not shape:
            continue
        if not why and holding.overlaps(start, end):
            why = "overlaps another slot"
        rows.append((start, end, why))
    return rows


def slots_materialise(
    *, tutor: Tutor, now: datetime, horizon_weeks: int | None = None
) -> MaterialiseResult:
    """Make the stored future slots match the tutor's rules, blocks and one-off slots.

    Idempotent: a second run with nothing changed writes nothing. Slots with an active
    booking are never touched. Withdrawn slots keep their rows (bookings may point at
    them) and come back if coverage returns, unless the tutor deleted them.
    """
    until = horizon_end(tutor, now, horizon_weeks)
    result = MaterialiseResult()
    with transaction.atomic():
        # One writer per tutor at a time: holds take the same lock.
        Tutor.objects.select_for_update().get(pk=tutor.pk)
        blocks = list(BlockedPeriod.objects.filter(tutor=tutor, end__gt=now))
        desired = desired_rule_slots(tutor, now=now, until=until, blocks=blocks)
        blocked = _Intervals.merged((b.start, b.end) for b in blocks)
        rows = list(Slot.objects.filter(tutor=tutor, end__gt=now).order_by("start", "id"))
        booked = set(
            Booking.objects.filter(
                tutor=tutor, status__in=ACTIVE_STATUSES, slot__end__gt=now
            ).values_list("slot_id", flat=True)
        )
        active = _Intervals((s.start, s.end) for s in rows if s.removed_at is None)
        by_key: dict[tuple[datetime, datetime], Slot] = {}
        for s in rows:
            if s.source == SlotSource.PRIVATE:
                continue  # a requested time's slot is never a rule's to reuse
            # Prefer the active row when a withdrawn one shares its times.
            if s.removed_at is None or (s.start, s.end) not in by_key:
                by_key[(s.start, s.end)] = s
        changed: list[Slot] = []

        # 1. Withdraw future unbooked slots that nothing covers any more.
        for s in rows:
            if s.removed_at is not None or s.id in booked or s.start <= now:
                continue
            if blocked.overlaps(s.start, s.end):
                reason = SlotRemoval.BLOCKED
            elif s.source == SlotSource.RULE and (s.start, s.end) not in desired:
                reason = SlotRemoval.UNCOVERED
            else:
                continue
            s.removed_at, s.removed_reason = now, reason
            active.remove(s.start, s.end)
            changed.append(s)
            result.removed += 1

        # 2. One-off slots withdrawn by a block that has since been lifted come back.
        for s in rows:
            if (
                s.source == SlotSource.ONE_OFF
                and s.removed_reason == SlotRemoval.BLOCKED
                and s.start > now
                and not blocked.overlaps(s.start, s.end)
                and not active.overlaps(s.start, s.end)
            ):
                s.removed_at, s.removed_reason = None, ""
                active.add(s.start, s.end)
                changed.append(s)
                result.reactivated += 1

        # 3. Create, bring back or refresh the slots the rules call for.
        new: list[Slot] = []
        for (start, end), (rule, remote, in_person) in desired.items():
            existing = by_key.get((start, end))
            if existing is not None and existing.removed_at is None:
                stale = (
                    existing.rule_id,
                    existing.remote_offering_id,
                    existing.in_person_offering_id,
                ) != (rule.id, remote.id if remote else None, in_person.id if in_person else None)
                if existing.source == SlotSource.RULE and existing.id not in booked and stale:
                    existing.rule, existing.remote_offering = rule, remote
                    existing.in_person_offering = in_person
                    changed.append(existing)
                    result.updated += 1
                continue
            if active.overlaps(start, end):
                continue  # a one-off or booked slot already holds this time
            if existing is not None:
                if existing.removed_reason == SlotRemoval.DELETED:
                    continue
                existing.removed_at, existing.removed_reason = None, ""
                existing.source, existing.rule = SlotSource.RULE, rule
                existing.remote_offering, existing.in_person_offering = remote, in_person
                changed.append(existing)
                result.reactivated += 1
            else:
                new.append(
                    Slot(
                        tutor=tutor,
                        start=start,
                        end=end,
                        source=SlotSource.RULE,
                        rule=rule,
                        remote_offering=remote,
                        in_person_offering=in_person,
                    )
                )
                result.created += 1
            active.add(start, end)

        if changed:
            # Withdrawals first so a reactivated neighbour never meets an old overlap.
            changed.sort(key=lambda s: s.removed_at is None)
            for s in changed:
                s.save(
                    update_fields=[
                        "removed_at",
                        "removed_reason",
                        "source",
                        "rule",
                        "remote_offering",
                        "in_person_offering",
                    ]
                )
        if new:
            Slot.objects.bulk_create(new)
    if result != MaterialiseResult():
        logger.info("materialised slots for %s: %s", tutor.slug, result)
    return result
