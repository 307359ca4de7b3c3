"""Reads for the tutor's calendars page and API. A constant number of queries per call."""

from django.db.models import QuerySet

from bookings.errors import NotFound
from bookings.models import Tutor
from bookings.selectors import BusyConflict, tutor_busy_conflicts

from . import crypto
from .models import CalendarSource

# Sessions a busy time covers live with the bookings (the dashboard shows them too).
Conflict = BusyConflict
tutor_conflicts = tutor_busy_conflicts


def tutor_sources(*, tutor: Tutor) -> QuerySet[CalendarSource]:
    return CalendarSource.objects.filter(tutor=tutor).order_by("name", "id")


def tutor_source(*, tutor: Tutor, source_id: int) -> CalendarSource:
    """One of the tutor's sources; NotFound for anyone else's (a 404, never a 403)."""
    source = CalendarSource.objects.filter(tutor=tutor, pk=source_id).first()
    if source is None:
        raise NotFound("No such calendar.")
    return source


def has_credentials(source: CalendarSource) -> bool:
    """Whether the source has a user name or password stored (not what they are)."""
    try:
        secret = crypto.decrypt(source.secret)
    except crypto.InvalidToken:
        return False
    return bool(secret.get("username") or secret.get("password"))
