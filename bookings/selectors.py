"""Reads: what students and tutors see. A constant number of queries per call."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from .availability import busy_bookings, open_offerings
from .errors import NotFound
from .models import Booking, Offering, Slot, Tutor

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
    """Bookable slots starting in [start, end), with the modes open in each. Two queries."""
    qs = Slot.objects.filter(
        removed_at__isnull=True,
        start__gte=max(start, now),
        start__lt=end,
        tutor__is_active=True,
    ).select_related("tutor", "remote_offering", "in_person_offering")
    if tutor is not None:
        qs = qs.filter(tutor=tutor)
    if mode == "remote":
        qs = qs.filter(remote_offering__is_active=True)
    elif mode == "in_person":
        qs = qs.filter(in_person_offering__is_active=True)
    slots = list(qs.order_by("start"))
    if not slots:
        return []
    tutors = {s.tutor_id: s.tutor for s in slots}
    margin = max((t.travel_buffer for t in tutors.values()), default=timedelta())
    busy = busy_bookings(
        tutor_ids=list(tutors), start=slots[0].start, end=slots[-1].end, margin=margin
    )
    by_tutor: dict[int, list] = {}
    for b in busy:
        by_tutor.setdefault(b.tutor_id, []).append(b)
    result = []
    for slot in slots:
        offers = open_offerings(slot, now=now, busy=_near(by_tutor.get(slot.tutor_id, []), slot))
        if offers and (mode is None or mode in offers):
            result.append(OpenSlot(slot, offers))
    return result


def _near(busy: list, slot: Slot) -> list:
    """Only bookings within a day of the slot can matter; keeps the scan short."""
    day = timedelta(days=1)
    return [b for b in busy if b.start < slot.end + day and b.end > slot.start - day]


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
    """The booking behind a manage link. The lookup is an indexed equality on a 256-bit
    random token, so guessing is hopeless and timing reveals nothing useful."""
    if not TOKEN_RE.fullmatch(token):
        raise NotFound("No booking for that link.")
    booking = (
        Booking.objects.select_related(
            "tutor", "offering", "slot", "slot__remote_offering", "slot__in_person_offering"
        )
        .filter(manage_token=token)
        .first()
    )
    if booking is None:
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
