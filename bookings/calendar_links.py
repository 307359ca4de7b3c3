"""The "Add to Google Calendar" and "Add to Outlook.com" links of a session.

Beside the .ics download: a student on a phone with a web calendar adds the session in
one tap. The links carry what the event says (title, time, where or how to join) and
never the student's private manage link: a calendar event may be shared, synced to
other devices or shown to others, and the manage link acts as the student.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from .ics import map_link, one_line, safe_url
from .models import Booking, BookingStatus, Mode

GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = "https://outlook.live.com/calendar/0/deeplink/compose"


@dataclass(frozen=True)
class CalendarLinks:
    google: str
    outlook: str


def _basic(moment: datetime) -> str:
    """UTC in iCalendar's basic format, as Google's `dates` takes it: 20261203T150000Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _extended(moment: datetime) -> str:
    """UTC in ISO 8601's extended form, which Outlook.com's compose link reads."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def calendar_links(
    *, title: str, start: datetime, end: datetime, details: str, location: str
) -> CalendarLinks:
    google = {
        "action": "TEMPLATE",
        "text": title,
        "dates": f"{_basic(start)}/{_basic(end)}",
        "details": details,
        "location": location,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": title,
        "startdt": _extended(start),
        "enddt": _extended(end),
        "body": details,
        "location": location,
    }
    return CalendarLinks(
        google=f"{GOOGLE}?{urlencode(google)}", outlook=f"{OUTLOOK}?{urlencode(outlook)}"
    )


def booking_calendar_links(
    booking: Booking, *, start: datetime | None = None, end: datetime | None = None
) -> CalendarLinks:
    """The links for a booking (slot, tutor and offering loaded): the video link only once
    the session is paid for, the meeting place and its map for an in-person session.

    `start`/`end`: the times an email was written about (its own snapshot), when they
    may differ from the slot's now."""
    tutor = one_line(booking.tutor.display_name, limit=200)
    title = f"{one_line(booking.offering.title, limit=200)} with {tutor}"
    if booking.mode == Mode.IN_PERSON:
        name, address = booking.offering.place_name, booking.offering.place_address
        location = ", ".join(one_line(part) for part in (name, address) if part)
        details = f"In-person session with {tutor} at {location}. Map: {map_link(address)}"
    else:
        paid = booking.status in (BookingStatus.CONFIRMED, BookingStatus.COMPLETED)
        video = safe_url(booking.offering.video_url) if paid else ""
        location = video
        details = f"Video session with {tutor}." + (f" Join: {video}" if video else "")
    return calendar_links(
        title=title,
        start=start or booking.slot.start,
        end=end or booking.slot.end,
        details=details,
        location=location,
    )
