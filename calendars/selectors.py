"""Reads for the tutor's calendars page and API. A constant number of queries per call."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from bookings.errors import NotFound
from bookings.models import Booking, BookingStatus, BusyInterval, Tutor

from .models import CalendarSource


def tutor_sources(*, tutor: Tutor) -> QuerySet[CalendarSource]:
    return CalendarSource.objects.filter(tutor=tutor).order_by("name", "id")


def tutor_source(*, tutor: Tutor, source_id: int) -> CalendarSource:
    """One of the tutor's sources; NotFound for anyone else's (a 404, never a 403)."""
    source = CalendarSource.objects.filter(tutor=tutor, pk=source_id).first()
    if source is None:
        raise NotFound("No such calendar.")
    return source


@dataclass(frozen=True)
class Conflict:
    booking: Booking
    busy_start: datetime
    busy_end: datetime


def tutor_conflicts(*, tutor: Tutor, now: datetime) -> list[Conflict]:
    """Confirmed upcoming sessions that a busy time from the tutor's calendars covers:
    they stand, and the tutor decides (keep, move or cancel). Two queries."""
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
        conflicts.append(Conflict(booking, over.start, over.end))
    return conflicts
