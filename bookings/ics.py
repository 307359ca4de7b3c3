"""Bookings as iCalendar (RFC 5545 / iTIP RFC 5546) events, built with `icalendar`.

One stable UID per booking and a SEQUENCE raised on every change let calendars update
or remove the event they already hold. Times are in UTC, which every client accepts
without a VTIMEZONE.

Only a booking that was confirmed is an event (event_state): a hold is a promise to
pay, not a session, and an expired hold never was one. Every stored string that goes
into a calendar is made safe first (one_line, text_block, safe_url, mailto): names,
titles and places come from people and old rows, and no value may end a content line
or a parameter. Nothing here puts the student's manage link into a calendar: a
calendar event travels (the tutor's feed, shared calendars, iTIP replies to the
organizer), and the link is a secret that cancels the booking.

This module also owns one_line for the emails (bookings.notifications), because an
email header and an iCalendar parameter need the same thing: a single safe line.
"""

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, quote_plus, urlsplit

from django.conf import settings
from django.utils.encoding import iri_to_uri
from icalendar import Alarm, Calendar, Event, vCalAddress

from .errors import NotFound
from .models import Booking, BookingStatus, Mode

PRODID = "-//Tutoring Bookings//EN"

# --- text that cannot break a line ------------------------------------------------------

# Control characters, lone surrogates and the Unicode line and paragraph separators:
# with \t, \n, \r, \v, \f, \x1c-\x1e and \x85 that is everything str.splitlines() splits
# on, so no mail or calendar parser can see a line end inside a value.
_BREAKING = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Bidirectional embeddings, overrides and isolates reorder how a subject or a summary
# reads ("Trojan Source"); nobody needs them in a name.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(value: object, *, limit: int | None = None) -> str:
    """Any stored text as a single safe line: every control character, line or
    paragraph separator becomes a space and runs of white space collapse to one.

    For every email header value and every iCalendar parameter or one-line property.
    """
    text = "" if value is None else str(value)
    text = "".join(" " if c in _BIDI or unicodedata.category(c) in _BREAKING else c for c in text)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def text_block(value: object) -> str:
    """Free text that may have several lines (a student's note): its lines, each made
    safe by one_line, joined by plain newlines."""
    lines = [one_line(line) for line in ("" if value is None else str(value)).splitlines()]
    return "\n".join(lines).strip("\n")


def safe_url(value: object) -> str:
    """A stored web link fit for a URI property or a link in an email, or "" when it is
    not one (not http(s), or with spaces or control characters in it)."""
    text = "" if value is None else str(value).strip()
    if not text or one_line(text) != text or " " in text:
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return iri_to_uri(text)


def mailto(address: object) -> str:
    """A CAL-ADDRESS for an email address: anything outside a plain address is
    percent-encoded (RFC 6068), so no stored address can end the content line."""
    return "mailto:" + quote(one_line(address), safe="@!$&'*+-=?^_`{|}~.")


def _param(value: object) -> str:
    """An iCalendar parameter value (CN): one line, and no DQUOTE, which RFC 5545
    forbids even inside a quoted value; icalendar quotes the rest as needed. Parameter
    values have no escapes, yet parsers (icalendar's among them) read a backslash in an
    unquoted one as an escape and lose the parameters after it: no name needs one."""
    return one_line(value, limit=200).replace('"', "'").replace("\\", "/")


def map_link(address: str) -> str:
    return f"https://www.openstreetmap.org/search?query={quote_plus(one_line(address))}"


# --- which booking is an event -------------------------------------------------------------

# Sessions that stand (or took place): calendars hold them as events.
EVENT_STATUSES = frozenset(
    {BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW}
)


def event_state(booking: Booking) -> str | None:
    """What a calendar should hold for this booking: "CONFIRMED" (an event),
    "CANCELLED" (a confirmed booking called off: calendars remove their copy) or None
    (a hold, an expired hold, or a hold dropped before payment: it never was an event).
    """
    if booking.status in EVENT_STATUSES:
        return "CONFIRMED"
    if booking.status == BookingStatus.CANCELLED and booking.confirmed_at is not None:
        return "CANCELLED"
    return None


class NotAnEvent(NotFound):
    """The booking has no calendar event (see event_state): a 404 to whoever asks."""

    def __init__(self) -> None:
        super().__init__("This booking is not a confirmed session, so it has no calendar event.")


def method_for(booking: Booking) -> str:
    return "CANCEL" if event_state(booking) == "CANCELLED" else "REQUEST"


# --- building ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """The booking as one message spoke about it: an email queued before a later change
    keeps its own times and sequence."""

    start: datetime
    end: datetime
    sequence: int
    cancelled: bool

    @classmethod
    def current(cls, booking: Booking) -> "Version":
        return cls(
            start=booking.slot.start,
            end=booking.slot.end,
            sequence=booking.sequence,
            cancelled=event_state(booking) == "CANCELLED",
        )


def _host() -> str:
    return urlsplit(settings.PUBLIC_BASE_URL).hostname or "tutoring"


def booking_uid(booking: Booking) -> str:
    return f"booking-{booking.pk}@{_host()}"


def booking_event(
    booking: Booking, version: Version, *, now: datetime, for_tutor: bool = False
) -> Event:
    """The booking as one VEVENT, as `version` describes it."""
    tutor, offering = booking.tutor, booking.offering
    title = one_line(offering.title, limit=200)
    remote = booking.mode == Mode.REMOTE
    video = safe_url(offering.video_url) if remote else ""
    place = one_line(f"{offering.place_name}, {offering.place_address}") if not remote else ""
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", version.sequence)
    event.add("dtstamp", now)
    event.add("dtstart", version.start)
    event.add("dtend", version.end)
    other = booking.student_name if for_tutor else tutor.display_name
    event.add("summary", one_line(f"{title} with {one_line(other, limit=200)}"))
    mode_label = Mode(booking.mode).label if booking.mode in Mode.values else ""
    lines = [one_line(f"{title} ({mode_label}).")]
    if version.cancelled:
        # Called off: nothing to join, and the video link is not handed out any more.
        lines.append("Cancelled.")
    else:
        if remote and video:
            lines.append(f"Video link: {video}")
        if not remote:
            lines.append(f"Meet at {place}")
            lines.append(f"Map: {map_link(offering.place_address)}")
        if for_tutor and booking.notes:
            lines.append(f"Student's note:\n{text_block(booking.notes)}")
    event.add("description", "\n".join(lines))
    if not version.cancelled:
        if remote and video:
            event.add("location", video)
            event.add("url", video)
        elif not remote:
            event.add("location", place)
            event.add("url", map_link(offering.place_address))
    organizer = vCalAddress(mailto(tutor.email))
    if name := _param(tutor.display_name):
        organizer.params["CN"] = name
    event.add("organizer", organizer)
    attendee = vCalAddress(mailto(booking.student_email))
    if name := _param(booking.student_name):
        attendee.params["CN"] = name
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = "ACCEPTED"
    attendee.params["RSVP"] = "TRUE"
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if version.cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if not version.cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{title} starts in 30 minutes")
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
        cal.add("x-wr-calname", one_line(name, limit=200))
    return cal


def version_calendar(
    booking: Booking, version: Version, *, now: datetime, for_tutor: bool = False
) -> bytes:
    """An invite for one version of the booking (emails pin the version they speak of):
    METHOD:REQUEST while it stands, CANCEL once cancelled. UTF-8, CRLF, folded at 75
    octets (icalendar never splits a character)."""
    cal = _calendar("CANCEL" if version.cancelled else "REQUEST")
    cal.add_component(booking_event(booking, version, now=now, for_tutor=for_tutor))
    return cal.to_ical()


def booking_calendar(booking: Booking, *, now: datetime, for_tutor: bool = False) -> bytes:
    """The invite for the booking as it is now. Raises NotAnEvent (a 404) for a booking
    that never was a session: a hold, an expired hold, a hold dropped unpaid."""
    if event_state(booking) is None:
        raise NotAnEvent()
    return version_calendar(booking, Version.current(booking), now=now, for_tutor=for_tutor)


def feed_calendar(bookings: Iterable[Booking], *, name: str, now: datetime) -> bytes:
    """A subscription feed: no METHOD (RFC 5545 §3.7.2: a published calendar, not a request).
    Only sessions that stand are in it; a calendar drops what a feed stops listing."""
    cal = _calendar(None, name)
    for booking in bookings:
        if event_state(booking) == "CONFIRMED":
            version = Version.current(booking)
            cal.add_component(booking_event(booking, version, now=now, for_tutor=True))
    return cal.to_ical()
