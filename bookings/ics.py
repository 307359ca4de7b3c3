"""Bookings as iCalendar (RFC 5545 / iTIP RFC 5546) events, built with `icalendar`.

One stable UID per booking and a SEQUENCE raised on every change let calendars update
or remove the event they already hold. Times are in UTC, which every client accepts
without a VTIMEZONE.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from django.conf import settings
from icalendar import Alarm, Calendar, Event, vCalAddress, vText

from .models import Booking, BookingStatus, Mode

PRODID = "-//Tutoring Bookings//EN"


def booking_uid(booking: Booking) -> str:
    host = settings.PUBLIC_BASE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return f"booking-{booking.pk}@{host or 'tutoring'}"


def method_for(booking: Booking) -> str:
    return "CANCEL" if booking.status == BookingStatus.CANCELLED else "REQUEST"


def _location(booking: Booking) -> str:
    offering = booking.offering
    if booking.mode == Mode.IN_PERSON:
        return f"{offering.place_name}, {offering.place_address}"
    return offering.video_url


def map_link(address: str) -> str:
    return f"https://www.openstreetmap.org/search?query={quote_plus(address)}"


def booking_event(
    booking: Booking,
    *,
    now: datetime,
    for_tutor: bool = False,
    start: datetime | None = None,
    end: datetime | None = None,
    sequence: int | None = None,
    cancelled: bool | None = None,
) -> Event:
    """The booking as one VEVENT. The keyword overrides describe an earlier version of
    the booking (an email queued before a later change keeps its own times)."""
    tutor, offering = booking.tutor, booking.offering
    if cancelled is None:
        cancelled = booking.status == BookingStatus.CANCELLED
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", booking.sequence if sequence is None else sequence)
    event.add("dtstamp", now)
    event.add("dtstart", start or booking.slot.start)
    event.add("dtend", end or booking.slot.end)
    other = booking.student_name if for_tutor else tutor.display_name
    event.add("summary", f"{offering.title} with {other}")
    lines = [f"{offering.title} ({Mode(booking.mode).label})."]
    if booking.mode == Mode.REMOTE:
        lines.append(f"Video link: {offering.video_url}")
    else:
        lines.append(f"Meet at {offering.place_name}, {offering.place_address}")
        lines.append(f"Map: {map_link(offering.place_address)}")
    if for_tutor and booking.notes:
        lines.append(f"Student's note: {booking.notes}")
    if not for_tutor:
        lines.append(f"Manage or cancel: {booking.manage_url}")
    event.add("description", "\n".join(lines))
    event.add("location", _location(booking))
    event.add("url", offering.video_url if booking.mode == Mode.REMOTE else booking.manage_url)
    organizer = vCalAddress(f"mailto:{tutor.email}")
    organizer.params["cn"] = vText(tutor.display_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{booking.student_email}")
    attendee.params["cn"] = vText(booking.student_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    attendee.params["rsvp"] = vText("TRUE")
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{offering.title} starts in 30 minutes")
        alarm.add("trigger", timedelta(minutes=-30))
        event.add_component(alarm)
    return event


def _calendar(method: str | None, name: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    return cal


def booking_calendar(
    booking: Booking, *, now: datetime, for_tutor: bool = False, **version: Any
) -> bytes:
    """The invite for one booking: METHOD:REQUEST while it stands, CANCEL once cancelled.

    `version` (start, end, sequence, cancelled) pins an earlier version; see booking_event.
    """
    cancelled = version.get("cancelled")
    if cancelled is None:
        cancelled = booking.status == BookingStatus.CANCELLED
    cal = _calendar("CANCEL" if cancelled else "REQUEST")
    cal.add_component(booking_event(booking, now=now, for_tutor=for_tutor, **version))
    return cal.to_ical()


def feed_calendar(bookings: Iterable[Booking], *, name: str, now: datetime) -> bytes:
    """A subscription feed: no METHOD (RFC 5545 §3.7.2: a published calendar, not a request)."""
    cal = _calendar(None, name)
    for booking in bookings:
        cal.add_component(booking_event(booking, now=now, for_tutor=True))
    return cal.to_ical()
