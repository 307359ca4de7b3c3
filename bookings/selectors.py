"""Reads: what students and tutors see. A constant number of queries per call."""

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, QuerySet

from .availability import Busy, Open, busy_bookings, decide
from .errors import NotFound
from .models import (
    ACTIVE_STATUSES,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingStatus,
    Mode,
    Offering,
    Slot,
    Tutor,
    token_digest,
    token_matches,
)

# What new_token() produces: URL-safe base64. Anything else cannot be a token.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class OpenSlot:
    slot: Slot
    offerings: dict[str, Offering]


def open_slots(
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    tutor: Tutor | None = None,
    mode: str | None = None,
) -> list[OpenSlot]:
    """Bookable slots starting in [start, end), with the modes open in each.

    Four queries whatever the range holds: slots, their offerings, the tutors' active
    bookings and busy times nearby (their own calendars' stored rows: never parsed
    here), and the tutors themselves (none when `tutor` is given). Slots are
    read without joins: a tutor has a handful of offerings, so attaching them in Python
    is far cheaper than building three model instances per row from a wide join.
    """
    qs = Slot.objects.filter(
        removed_at__isnull=True, start__gte=max(start, now), start__lt=end
    ).only(*SLOT_COLUMNS)
    if tutor is not None:
        qs = qs.filter(tutor=tutor)
    if mode == Mode.REMOTE:
        qs = qs.filter(remote_offering__isnull=False)
    elif mode == Mode.IN_PERSON:
        qs = qs.filter(in_person_offering__isnull=False)
    slots = list(qs.order_by("start"))
    if not slots:
        return []
    tutor_ids = {s.tutor_id for s in slots}
    tutors = (
        {tutor.pk: tutor}
        if tutor is not None
        else Tutor.objects.filter(pk__in=tutor_ids, is_active=True).in_bulk()
    )
    offering_ids = {
        i for s in slots for i in (s.remote_offering_id, s.in_person_offering_id) if i is not None
    }
    offerings = Offering.objects.in_bulk(offering_ids)
    margin = max((t.travel_buffer for t in tutors.values()), default=timedelta())
    busy = busy_bookings(
        tutor_ids=list(tutors), start=slots[0].start, end=slots[-1].end, margin=margin
    )
    bookings = [b for b in busy if not b.is_elsewhere]
    elsewhere = [b for b in busy if b.is_elsewhere]
    nearby = {tid: _Nearby([b for b in bookings if b.tutor_id == tid]) for tid in tutors}
    away = {tid: _Away([b for b in elsewhere if b.tutor_id == tid]) for tid in tutors}
    result = []
    for slot in slots:
        if slot.tutor_id not in tutors:
            continue  # an inactive tutor's slot
        slot.tutor = tutors[slot.tutor_id]
        slot.remote_offering = offerings.get(slot.remote_offering_id or 0)
        slot.in_person_offering = offerings.get(slot.in_person_offering_id or 0)
        around = nearby[slot.tutor_id].around(slot) + away[slot.tutor_id].around(slot)
        decision = decide(slot, now=now, mode=mode, busy=around)
        if isinstance(decision, Open):
            result.append(OpenSlot(slot, decision.offerings))
    return result


SLOT_COLUMNS = ("id", "tutor_id", "start", "end", "remote_offering_id", "in_person_offering_id",
                "removed_at")  # fmt: skip


class _Away:
    """One tutor's busy times from their own calendars, joined where they overlap (they
    come from several calendars and may be days long), to find those near a slot.

    Joined intervals are disjoint, so sorted by start they are sorted by end too.
    """

    WINDOW = timedelta(days=1)  # at least the longest travel buffer

    def __init__(self, busy: list[Busy]) -> None:
        joined: list[Busy] = []
        for b in sorted(busy, key=lambda b: b.start):
            if joined and b.start <= joined[-1].end:
                if b.end > joined[-1].end:
                    joined[-1] = Busy.elsewhere(b.tutor_id, joined[-1].start, b.end)
            else:
                joined.append(b)
        self._busy = joined
        self._ends = [b.end for b in joined]

    def around(self, slot: Slot) -> list[Busy]:
        if not self._busy:
            return []
        i = bisect.bisect_right(self._ends, slot.start - self.WINDOW)
        hi = slot.end + self.WINDOW
        found = []
        while i < len(self._busy) and self._busy[i].start < hi:
            found.append(self._busy[i])
            i += 1
        return found


class _Nearby:
    """One tutor's active bookings sorted by start, to find those near a slot quickly.

    A tutor's active bookings sit on non-overlapping slots, so sorting by start also
    sorts them by end; only bookings within a day of the slot can matter.
    """

    WINDOW = timedelta(days=1)

    def __init__(self, busy: list[Busy]) -> None:
        self._busy = sorted(busy, key=lambda b: b.start)
        self._starts = [b.start for b in self._busy]

    def around(self, slot: Slot) -> list[Busy]:
        lo = bisect.bisect_left(self._starts, slot.start - 2 * self.WINDOW)
        hi = bisect.bisect_right(self._starts, slot.end + self.WINDOW)
        return self._busy[lo:hi]


def tutors_public() -> QuerySet[Tutor]:
    return (
        Tutor.objects.filter(is_active=True)
        .prefetch_related(
            Prefetch("offerings", queryset=Offering.objects.filter(is_active=True).order_by("mode"))
        )
        .order_by("display_name", "id")
    )


def tutor_public(slug: str, *, with_offerings: bool = True) -> Tutor:
    qs = tutors_public() if with_offerings else Tutor.objects.filter(is_active=True)
    tutor = qs.filter(slug=slug).first()
    if tutor is None:
        raise NotFound("No tutor with that name.")
    return tutor


def booking_by_token(token: str) -> Booking:
    """The booking behind a manage link (a 256-bit random token: guessing is hopeless).
    Looked up by the token's digest and compared in constant time."""
    if not TOKEN_RE.fullmatch(token):
        raise NotFound("No booking for that link.")
    booking = (
        Booking.objects.select_related(
            "tutor", "offering", "slot", "slot__remote_offering", "slot__in_person_offering"
        )
        .filter(manage_token_digest=token_digest(token))
        .first()
    )
    if booking is None or not token_matches(booking.manage_token, token):
        raise NotFound("No booking for that link.")
    return booking


def tutor_bookings(
    *,
    tutor: Tutor,
    statuses: list[str] | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    mode: str | None = None,
) -> QuerySet[Booking]:
    qs = Booking.objects.filter(tutor=tutor).select_related("slot", "offering", "tutor")
    if statuses:
        qs = qs.filter(status__in=statuses)
    if start_from:
        qs = qs.filter(slot__start__gte=start_from)
    if start_to:
        qs = qs.filter(slot__start__lt=start_to)
    if mode:
        qs = qs.filter(mode=mode)
    return qs.order_by("slot__start", "created_at")


@dataclass(frozen=True)
class HoldCounts:
    """A tutor's unpaid holds right now: how many, and from how many clients."""

    held: int
    clients: int


def tutor_hold_counts(*, tutor: Tutor, now: datetime) -> HoldCounts:
    """Unexpired unpaid holds on the tutor's calendar, so a tutor sees when someone
    sits on their time (the per-client limit keeps one client to a few). One query."""
    rows = Booking.objects.filter(
        tutor=tutor, status=BookingStatus.PENDING_PAYMENT, hold_expires_at__gt=now
    ).aggregate(held=Count("pk"), clients=Count("client_digest", distinct=True))
    return HoldCounts(held=rows["held"] or 0, clients=rows["clients"] or 0)


# --- the tutor's own rows -------------------------------------------------------------------
# Every read of the tutor's pages and API: views and presenters call these and run no
# queries of their own, so each page's query count is visible here.


def tutor_offerings(*, tutor: Tutor, active_only: bool = False) -> QuerySet[Offering]:
    """Active first, remote before in person, oldest first."""
    rows = Offering.objects.filter(tutor=tutor)
    if active_only:
        rows = rows.filter(is_active=True)
    return rows.order_by("-is_active", "mode", "id")


def tutor_rules(*, tutor: Tutor) -> QuerySet[AvailabilityRule]:
    return AvailabilityRule.objects.filter(tutor=tutor).prefetch_related("offerings").order_by("id")


def tutor_blocks(*, tutor: Tutor, now: datetime | None = None) -> QuerySet[BlockedPeriod]:
    """The tutor's blocked periods (those not over yet, given `now`), by start."""
    rows = BlockedPeriod.objects.filter(tutor=tutor)
    if now is not None:
        rows = rows.filter(end__gt=now)
    return rows.order_by("start")


def tutor_slot_rows(
    *,
    tutor: Tutor,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    end_after: datetime | None = None,
    include_removed: bool = False,
    source: str | None = None,
) -> QuerySet[Slot]:
    """The tutor's slots by start, with the offerings (and rule) a listing shows."""
    rows = Slot.objects.filter(tutor=tutor)
    if not include_removed:
        rows = rows.filter(removed_at__isnull=True)
    if source is not None:
        rows = rows.filter(source=source)
    if start_from is not None:
        rows = rows.filter(start__gte=start_from)
    if start_to is not None:
        rows = rows.filter(start__lt=start_to)
    if end_after is not None:
        rows = rows.filter(end__gt=end_after)
    return rows.select_related("remote_offering", "in_person_offering", "rule").order_by(
        "start", "id"
    )


def active_bookings_of(slots: Iterable[Slot]) -> dict[int, Booking]:
    """The held or confirmed booking of each slot that has one (one query)."""
    ids = [s.pk for s in slots]
    rows = Booking.objects.filter(slot_id__in=ids, status__in=ACTIVE_STATUSES).only(
        "id", "slot_id", "status", "student_name", "mode"
    )
    return {b.slot_id: b for b in rows}


def slot_of(*, tutor: Tutor, slot_id: int | None) -> Slot | None:
    """One of the tutor's slots (withdrawn ones too), or None."""
    if not slot_id:
        return None
    return Slot.objects.filter(pk=slot_id, tutor=tutor).first()


def rule_slot_count(*, rule: AvailabilityRule, now: datetime) -> int:
    """How many future slots a saved rule gives."""
    return Slot.objects.filter(rule=rule, removed_at__isnull=True, start__gt=now).count()


def tutor_fresh(*, tutor: Tutor) -> Tutor:
    """The tutor's row as stored (a form edits a copy, not the request's instance)."""
    return Tutor.objects.get(pk=tutor.pk)


def tutor_booking(*, tutor: Tutor, booking_id: str) -> Booking:
    """One of the tutor's bookings with its status history, or NotFound."""
    events = Prefetch("events", queryset=BookingEvent.objects.order_by("at", "id"))
    try:
        return tutor_bookings(tutor=tutor).prefetch_related(events).get(pk=booking_id)
    except (Booking.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such booking.") from None


def tutor_booked_slot_ids(*, tutor: Tutor) -> set[int]:
    """The slots of the tutor's held or confirmed bookings."""
    rows = Booking.objects.filter(tutor=tutor, status__in=ACTIVE_STATUSES)
    return set(rows.values_list("slot_id", flat=True))
