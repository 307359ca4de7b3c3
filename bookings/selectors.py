"""Reads: what students and tutors see. A constant number of queries per call."""

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Model, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from . import tokens
from .availability import Busy, Closed, Open, busy_bookings, decide
from .errors import NotFound
from .models import (
    ACTIVE_STATUSES,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingStatus,
    BusyInterval,
    Mode,
    Offering,
    Slot,
    SlotSource,
    Tutor,
)


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
    qs = (
        Slot.objects.filter(removed_at__isnull=True, start__gte=max(start, now), start__lt=end)
        # A requested time's private slot is for its link only (bookings.time_requests).
        .exclude(source=SlotSource.PRIVATE)
        .only(*SLOT_COLUMNS)
    )
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


M = TypeVar("M", bound=Model)


def _by_link(queryset: QuerySet[M], token: str, *, purpose: tokens.Purpose, field: str) -> M | None:
    """The row a secret link names (bookings.tokens): by the key of a signed token
    whose signature checks out, or, for rows older than signed links, by the digest of
    their old random token. A token that is neither finds nothing, without a query."""
    if not tokens.TOKEN_RE.fullmatch(token):
        return None
    key = tokens.key_of(purpose, token)
    if key is not None:
        return queryset.filter(**{f"{field}_key": key}).first()
    if len(token) != tokens.LEGACY_LENGTH:
        return None
    return queryset.filter(**{f"{field}_legacy_digest": tokens.legacy_digest(token)}).first()


def booking_by_token(token: str) -> Booking:
    """The booking behind a student's manage link."""
    booking = _by_link(
        Booking.objects.select_related(
            "tutor", "offering", "slot", "slot__remote_offering", "slot__in_person_offering"
        ),
        token,
        purpose="manage",
        field="manage",
    )
    if booking is None:
        raise NotFound("No booking for that link.")
    return booking


def tutor_by_feed_token(token: str) -> Tutor | None:
    """The active tutor whose private calendar feed this token opens."""
    return _by_link(Tutor.objects.filter(is_active=True), token, purpose="feed", field="feed")


def tutor_bookings(
    *,
    tutor: Tutor,
    statuses: list[str] | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    mode: str | None = None,
) -> QuerySet[Booking]:
    # The series (a join, not a query per row): the tutor's answers name each
    # session's series and week.
    qs = Booking.objects.filter(tutor=tutor).select_related("slot", "offering", "tutor", "series")
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


def series_sessions_prefetch() -> Prefetch:
    """Each listed booking's series with its sessions week by week (one query for a
    whole page, whatever its series): `booking.series.sessions`. Lapsed holds were
    never sessions and are left out."""
    return Prefetch(
        "series__bookings",
        queryset=Booking.objects.exclude(status=BookingStatus.EXPIRED)
        .select_related("slot")
        .order_by("series_week"),
        to_attr="sessions",
    )


def tutor_booking(*, tutor: Tutor, booking_id: str) -> Booking:
    """One of the tutor's bookings with its status history and, for a week of a series,
    the series' other sessions; or NotFound."""
    events = Prefetch("events", queryset=BookingEvent.objects.order_by("at", "id"))
    try:
        return (
            tutor_bookings(tutor=tutor)
            .prefetch_related(events, series_sessions_prefetch())
            .get(pk=booking_id)
        )
    except (Booking.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such booking.") from None


def tutor_booked_slot_ids(*, tutor: Tutor) -> set[int]:
    """The slots of the tutor's held or confirmed bookings."""
    rows = Booking.objects.filter(tutor=tutor, status__in=ACTIVE_STATUSES)
    return set(rows.values_list("slot_id", flat=True))


# --- the tutor's dashboard, slot list and days off ------------------------------------------


SESSION_LISTS = ("upcoming", "past", "cancelled", "all")


def tutor_sessions(*, tutor: Tutor, show: str, now: datetime, query: str = "") -> QuerySet[Booking]:
    """One of the dashboard's lists (SESSION_LISTS), optionally only the students whose
    name or email contains `query` (case-insensitive; SQLite folds ASCII letters only).

    upcoming: held and confirmed, from the start of the tutor's today, soonest first;
    past: sessions that have started (confirmed, completed, no-show), latest first;
    cancelled: paid sessions that were cancelled, latest cancellation first;
    all: every session that was paid for or is being paid for, latest first.
    A page of any of them is two queries (its count, its rows with slot, offering and
    series), and a third when a session on it is part of a series (the series' sessions).
    """
    rows = (
        Booking.objects.filter(tutor=tutor)
        .select_related("slot", "offering", "series")
        .prefetch_related(series_sessions_prefetch())
    )
    if show == "upcoming":
        today = datetime.combine(now.astimezone(tutor.zone).date(), time(), tutor.zone)
        rows = rows.filter(status__in=ACTIVE_STATUSES, slot__start__gte=today).order_by(
            "slot__start", "created_at"
        )
    elif show == "past":
        held = (BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)
        rows = rows.filter(status__in=held, slot__start__lt=now).order_by("-slot__start", "pk")
    elif show == "cancelled":
        rows = rows.filter(status=BookingStatus.CANCELLED, confirmed_at__isnull=False).order_by(
            "-cancelled_at", "pk"
        )
    else:
        rows = rows.filter(
            Q(confirmed_at__isnull=False) | Q(status=BookingStatus.PENDING_PAYMENT)
        ).order_by("-slot__start", "pk")
    if query:
        rows = rows.filter(Q(student_name__icontains=query) | Q(student_email__icontains=query))
    return rows


@dataclass(frozen=True)
class MonthEarnings:
    """Money of one month (the tutor's calendar month) in one currency, minor units."""

    month: date
    currency: str
    paid: int
    refunded: int

    @property
    def net(self) -> int:
        return self.paid - self.refunded


def tutor_earnings(*, tutor: Tutor, since: datetime) -> list[MonthEarnings]:
    """Paid minus refunded per month since `since`, newest month first, by currency.

    A booking's price counts in the month it was confirmed (the money arrived: only its
    own checkout paid in full confirms it), its refund in the month it was cancelled.
    Money that never confirmed a booking (late or refused payments) was refunded in full
    and counts on neither side. A booking paid with a package credit brought no money of
    its own (the package's did, when bought) and counts on neither side either: its
    cancellation returns a credit, not money. Two queries.
    """
    prepaid = BookingEvent.objects.filter(
        booking=OuterRef("pk"), to_status=BookingStatus.CONFIRMED, data__prepaid=True
    )

    def by_month(moment: str, amount: str, **where: Any) -> dict[tuple[date, str], int]:
        rows = (
            Booking.objects.filter(tutor=tutor, confirmed_at__isnull=False, **where)
            .exclude(Exists(prepaid))
            .annotate(month=TruncMonth(moment, tzinfo=tutor.zone))
            .order_by()
            .values("month", "currency")
            .annotate(total=Sum(amount))
        )
        return {(row["month"].date(), row["currency"]): row["total"] or 0 for row in rows}

    paid = by_month("confirmed_at", "price_amount", confirmed_at__gte=since)
    refunded = by_month(
        "cancelled_at", "refund_amount", cancelled_at__gte=since, refund_amount__gt=0
    )
    keys = sorted(set(paid) | set(refunded), key=lambda k: (k[0], k[1]), reverse=True)
    return [MonthEarnings(m, c, paid.get((m, c), 0), refunded.get((m, c), 0)) for m, c in keys]


@dataclass(frozen=True)
class SlotState:
    """What students are told about one of the tutor's slots right now."""

    decision: Open | Closed
    # Why in person is closed when the slot stays open for remote sessions only.
    in_person_closed: Closed | None = None


def tutor_slot_states(
    *, tutor: Tutor, slots: Iterable[Slot], now: datetime
) -> dict[int, SlotState]:
    """availability.decide() for each of the tutor's slots, as the slot list and a hold
    would ask it: booked, too soon, behind a travel buffer, busy in the tutor's own
    calendar... One query (the tutor's bookings and busy times around the slots)."""
    slots = list(slots)
    if not slots:
        return {}
    busy = busy_bookings(
        tutor_ids=[tutor.pk],
        start=min(s.start for s in slots),
        end=max(s.end for s in slots),
        margin=tutor.travel_buffer,
    )
    nearby = _Nearby([b for b in busy if not b.is_elsewhere])
    away = _Away([b for b in busy if b.is_elsewhere])
    states = {}
    for slot in slots:
        slot.tutor = tutor
        around = nearby.around(slot) + away.around(slot)
        decision = decide(slot, now=now, busy=around)
        in_person_closed = None
        in_person = Mode.IN_PERSON.value
        if (
            isinstance(decision, Open)
            and in_person not in decision.offerings
            and in_person in slot.offerings()
        ):
            why = decide(slot, now=now, busy=around, mode=in_person)
            in_person_closed = why if isinstance(why, Closed) else None
        states[slot.pk] = SlotState(decision, in_person_closed)
    return states


def block_bookings(*, tutor: Tutor, block: BlockedPeriod, now: datetime) -> QuerySet[Booking]:
    """The tutor's upcoming held and confirmed sessions inside a blocked period (a block
    leaves them standing: the tutor decides), soonest first."""
    return (
        Booking.objects.filter(
            tutor=tutor,
            status__in=ACTIVE_STATUSES,
            slot__start__lt=block.end,
            slot__end__gt=block.start,
            slot__start__gt=now,
        )
        .select_related("slot", "offering")
        .order_by("slot__start", "created_at")
    )


def tutor_offerings_with_slots(*, tutor: Tutor, now: datetime) -> set[int]:
    """The offerings some upcoming slot of the tutor's sells (the others cannot be booked)."""
    pairs = (
        Slot.objects.filter(tutor=tutor, removed_at__isnull=True, start__gt=now)
        .exclude(source=SlotSource.PRIVATE)
        .order_by()
        .values_list("remote_offering_id", "in_person_offering_id")
        .distinct()
    )
    return {pk for pair in pairs for pk in pair if pk is not None}


@dataclass(frozen=True)
class BusyConflict:
    """A confirmed upcoming session that a busy time from the tutor's own calendars
    covers (the first such busy time)."""

    booking: Booking
    busy_start: datetime
    busy_end: datetime


def tutor_busy_conflicts(*, tutor: Tutor, now: datetime) -> list[BusyConflict]:
    """Confirmed upcoming sessions a busy time now covers: they stand, and the tutor
    decides (keep, move or cancel). The dashboard and the calendars page show them.
    Two queries."""
    covering = BusyInterval.objects.filter(
        tutor=tutor, start__lt=OuterRef("slot__end"), end__gt=OuterRef("slot__start")
    )
    sessions = list(
        Booking.objects.filter(tutor=tutor, status=BookingStatus.CONFIRMED, slot__end__gt=now)
        .filter(Exists(covering))
        .select_related("slot", "offering")
        .order_by("slot__start")
    )
    if not sessions:
        return []
    busy = list(
        BusyInterval.objects.filter(
            tutor=tutor, end__gt=sessions[0].slot.start, start__lt=sessions[-1].slot.end
        ).order_by("start")
    )
    conflicts = []
    for booking in sessions:
        over = next(b for b in busy if b.start < booking.slot.end and b.end > booking.slot.start)
        conflicts.append(BusyConflict(booking, over.start, over.end))
    return conflicts
