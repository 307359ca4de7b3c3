"""Reads: what students and tutors see. A constant number of queries per call."""

import bisect
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Prefetch, QuerySet

from .availability import Busy, Open, busy_bookings, decide
from .errors import NotFound
from .models import (
    Booking,
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
    bookings nearby, and the tutors themselves (none when `tutor` is given). Slots are
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
    nearby = {tid: _Nearby([b for b in busy if b.tutor_id == tid]) for tid in tutors}
    result = []
    for slot in slots:
        if slot.tutor_id not in tutors:
            continue  # an inactive tutor's slot
        slot.tutor = tutors[slot.tutor_id]
        slot.remote_offering = offerings.get(slot.remote_offering_id or 0)
        slot.in_person_offering = offerings.get(slot.in_person_offering_id or 0)
        decision = decide(slot, now=now, mode=mode, busy=nearby[slot.tutor_id].around(slot))
        if isinstance(decision, Open):
            result.append(OpenSlot(slot, decision.offerings))
    return result


SLOT_COLUMNS = ("id", "tutor_id", "start", "end", "remote_offering_id", "in_person_offering_id",
                "removed_at")  # fmt: skip


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
