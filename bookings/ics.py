"""Bookings as iCalendar (RFC 5545) events, and the iTIP (RFC 5546) messages about
them that travel by email (RFC 6047), built with `icalendar`.

Who gets what, and why:
- The student is invited. Their email carries METHOD:REQUEST (what Gmail, Outlook and
  Apple Calendar add to a calendar), later REQUEST again with the same UID and a higher
  SEQUENCE when the session moves, and METHOD:CANCEL with a higher SEQUENCE when it is
  called off. The student is the one ATTENDEE, PARTSTAT=ACCEPTED (they booked and paid)
  and RSVP=FALSE: no answer is asked for, because none is processed. The description
  says so: declining in a calendar changes nothing; the manage link cancels.
- The tutor is the ORGANIZER, so the tutor's copy asks nothing of them: METHOD:PUBLISH,
  no ATTENDEE (RFC 5546 §3.2.1 forbids one there), only as an attachment that nothing
  adds on its own. It is the very event of the tutor's feed: same UID, same SEQUENCE,
  same properties, so a calendar keyed on UIDs updates one event rather than showing
  two. The feed itself has no METHOD (a published calendar, RFC 5545 §3.7.2).
- ORGANIZER is the tutor, with SENT-BY naming the address the emails come From, so
  a client checking that the sender may speak for the organizer (RFC 6047 §3) agrees.
- A video session carries its link as LOCATION, URL and CONFERENCE (RFC 7986 §5.11);
  a cancelled one carries no link at all.

One UID per booking, stored on it (Booking.calendar_uid: random, so neither a new
domain nor a database reset changes or repeats it). Times are in UTC, which every
client accepts without a VTIMEZONE. DTSTAMP is when the message was made (an email's
outbox row) or, in the feed, when the booking last changed, so fetching the feed twice
gives the same bytes.

Only a booking that was confirmed is an event (event_state): a hold is a promise to
pay, not a session, and an expired hold never was one. Every stored string that goes
into a calendar is made safe first (one_line, text_block, safe_url, mailto): names,
titles and places come from people and old rows, and no value may end a content line
or a parameter. Nothing here puts the student's manage link into a calendar: a
calendar event travels (the tutor's feed, shared calendars, forwarded invites), and the
link is a secret that cancels the booking.

This module also owns one_line for the emails (bookings.notifications), because an
email header and an iCalendar parameter need the same thing: a single safe line.
"""

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from urllib.parse import quote, quote_plus, urlsplit

from django.conf import settings
from django.utils.encoding import iri_to_uri
from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress, vDuration

from .errors import NotFound
from .models import Booking, BookingSeries, BookingStatus, Mode

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
    """The iTIP method of the student's invite for the booking as it is now."""
    return "CANCEL" if event_state(booking) == "CANCELLED" else "REQUEST"


def method_of(*, cancelled: bool, for_tutor: bool) -> str:
    """The iTIP method of an emailed invite (see the module docstring)."""
    if for_tutor:
        return "PUBLISH"
    return "CANCEL" if cancelled else "REQUEST"


# --- building ------------------------------------------------------------------------------

# How often a subscribed client should fetch the feed again (RFC 7986 REFRESH-INTERVAL,
# and X-PUBLISHED-TTL for Outlook); unchanged fetches cost a 304 (bookings.feeds).
FEED_REFRESH = timedelta(minutes=30)
ALARM_BEFORE = timedelta(minutes=30)


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


def booking_uid(booking: Booking) -> str:
    return booking.calendar_uid


def sender_address() -> str:
    """The address our emails come From (DEFAULT_FROM_EMAIL without its name)."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1]


def _organizer(booking: Booking) -> vCalAddress:
    organizer = vCalAddress(mailto(booking.tutor.email))
    if name := _param(booking.tutor.display_name):
        organizer.params["CN"] = name
    if sender := sender_address():
        organizer.params["SENT-BY"] = mailto(sender)
    return organizer


def _attendee(booking: Booking, *, cancelled: bool) -> vCalAddress:
    """The student, who booked and paid: accepted, and asked for no answer."""
    attendee = vCalAddress(mailto(booking.student_email))
    if name := _param(booking.student_name):
        attendee.params["CN"] = name
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    if not cancelled:
        attendee.params["PARTSTAT"] = "ACCEPTED"
    attendee.params["RSVP"] = "FALSE"
    return attendee


def _description(booking: Booking, version: Version, *, for_tutor: bool) -> str:
    offering = booking.offering
    title = one_line(offering.title, limit=200)
    remote = booking.mode == Mode.REMOTE
    other = booking.student_name if for_tutor else booking.tutor.display_name
    lines = [f"{title} with {one_line(other, limit=200)}."]
    if for_tutor:
        lines.append(
            f"Student: {one_line(booking.student_name, limit=200)} "
            f"<{one_line(booking.student_email, limit=254)}>"
        )
    if version.cancelled:
        # Called off: nothing to join, and the video link is not handed out any more.
        lines.append("Cancelled.")
        return "\n".join(lines)
    if remote:
        video = safe_url(offering.video_url)
        lines.append(f"Video call: {video}" if video else "Video call.")
    else:
        lines.append(f"In person at {one_line(f'{offering.place_name}, {offering.place_address}')}")
        lines.append(f"Map: {map_link(offering.place_address)}")
    if for_tutor and booking.notes:
        lines.append(f"Student's note:\n{text_block(booking.notes)}")
    if not for_tutor:
        lines.append(
            "Accepting or declining this invitation in your calendar does not change the "
            "booking. To cancel or move the session, use the manage link in your "
            "confirmation email."
        )
    return "\n".join(lines)


def booking_event(
    booking: Booking, version: Version, *, stamp: datetime, for_tutor: bool = False
) -> Event:
    """The booking as one VEVENT, as `version` describes it, for the student's invite or
    for the tutor (feed and PUBLISH copy: no ATTENDEE, the student in the text)."""
    tutor, offering = booking.tutor, booking.offering
    title = one_line(offering.title, limit=200)
    remote = booking.mode == Mode.REMOTE
    video = safe_url(offering.video_url) if remote else ""
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", version.sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", version.start)
    event.add("dtend", version.end)
    other = booking.student_name if for_tutor else tutor.display_name
    event.add("summary", one_line(f"{title} with {one_line(other, limit=200)}"))
    event.add("description", _description(booking, version, for_tutor=for_tutor))
    if not version.cancelled:
        if remote and video:
            event.add("location", video)
            event.add("url", video)
            event.add(
                "conference",
                video,
                parameters={"VALUE": "URI", "FEATURE": "VIDEO", "LABEL": "Video call"},
            )
        elif not remote:
            event.add("location", one_line(f"{offering.place_name}, {offering.place_address}"))
            event.add("url", map_link(offering.place_address))
    event.add("organizer", _organizer(booking))
    if not for_tutor:
        event.add("attendee", _attendee(booking, cancelled=version.cancelled))
    event.add("status", "CANCELLED" if version.cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if not version.cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{title} starts in 30 minutes")
        alarm.add("trigger", -ALARM_BEFORE)
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
        cal.add("name", one_line(name, limit=200))
        cal.add("x-wr-calname", one_line(name, limit=200))
    return cal


def version_calendar(
    booking: Booking, version: Version, *, stamp: datetime, for_tutor: bool = False
) -> bytes:
    """An emailed invite for one version of the booking (emails pin the version they
    speak of), with the method method_of() gives. UTF-8, CRLF, folded at 75 octets
    (icalendar never splits a character)."""
    cal = _calendar(method_of(cancelled=version.cancelled, for_tutor=for_tutor))
    cal.add_component(booking_event(booking, version, stamp=stamp, for_tutor=for_tutor))
    return cal.to_ical()


def booking_calendar(booking: Booking, *, now: datetime) -> bytes:
    """The student's invite for the booking as it is now (their manage page's calendar
    file). Raises NotAnEvent (a 404) for a booking that never was a session: a hold, an
    expired hold, a hold dropped unpaid."""
    if event_state(booking) is None:
        raise NotAnEvent()
    return version_calendar(booking, Version.current(booking), stamp=now)


def feed_stamp(booking: Booking) -> datetime:
    """The feed's DTSTAMP (which, with no METHOD, means LAST-MODIFIED): when the booking
    last changed, so an unchanged feed is byte for byte the same on every fetch."""
    return booking.updated_at or booking.confirmed_at or booking.created_at


def feed_calendar(bookings: Iterable[Booking], *, name: str) -> bytes:
    """A subscription feed: no METHOD (RFC 5545 §3.7.2: a published calendar, not a request).
    Only sessions that stand are in it; a calendar drops what a feed stops listing."""
    cal = _calendar(None, name)
    cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(FEED_REFRESH))
    for booking in bookings:
        if event_state(booking) == "CONFIRMED":
            version = Version.current(booking)
            stamp = feed_stamp(booking)
            event = booking_event(booking, version, stamp=stamp, for_tutor=True)
            if (series := booking.series) is not None:
                _name_series(event, booking, series)
            cal.add_component(event)
    return cal.to_ical()


def _name_series(event: Event, booking: Booking, series: BookingSeries) -> None:
    """The feed keeps one event per session of a series (each moves and cancels on its
    own); these name the series it belongs to: RELATED-TO the student's recurring
    event (its parent, RFC 5545 §3.8.4.5), and categories that the apps which show them
    can group or colour by."""
    event.add("related-to", series.calendar_uid, parameters={"RELTYPE": "PARENT"})
    event.add(
        "categories",
        [
            "Weekly series",
            one_line(f"Weekly series: {series.student_name}", limit=200),
            f"Week {booking.series_week} of {series.weeks}",
        ],
    )


# --- a weekly series: one recurring event ---------------------------------------------------

# A weekly series is one event in the student's calendar, the shape Google, Outlook and
# Apple all keep as one series: DTSTART in the tutor's zone (with its VTIMEZONE) and
# RRULE:FREQ=WEEKLY;COUNT=<weeks asked>, so 18:00 stays 18:00 across a daylight-saving
# change; EXDATE takes out each week that is not a session (skipped when booking,
# never paid, or cancelled since), and a moved session is an override with its
# RECURRENCE-ID (RFC 5545 §3.8.4.4). The invite is always the whole series as it
# stands, with a higher SEQUENCE after every change (BookingSeries.sequence), sent as
# REQUEST; CANCEL only once no session stands. The sessions' own UIDs stay for the
# tutor's feed, where each session is its own event.


def series_stands(sessions: Iterable[Booking]) -> bool:
    return any(event_state(b) == "CONFIRMED" for b in sessions)


def series_method(sessions: Iterable[Booking], *, for_tutor: bool = False) -> str:
    return method_of(cancelled=not series_stands(sessions), for_tutor=for_tutor)


def series_calendar(
    series: BookingSeries, sessions: list[Booking], *, stamp: datetime, for_tutor: bool = False
) -> bytes:
    """The series as one recurring event (see above); `sessions` are its bookings."""
    standing = {b.series_week: b for b in sessions if event_state(b) == "CONFIRMED"}
    cancelled = not standing
    cal = _calendar(method_of(cancelled=cancelled, for_tutor=for_tutor))
    if not sessions:
        raise NotAnEvent()
    model = next(iter(standing.values()), sessions[0])
    first = series.week_start(1)
    length = model.offering.duration
    master = booking_event(
        model,
        Version(start=first, end=first + length, sequence=series.sequence, cancelled=cancelled),
        stamp=stamp,
        for_tutor=for_tutor,
    )
    master.pop("UID")
    master.add("uid", series.calendar_uid)
    master.add("rrule", {"FREQ": "WEEKLY", "COUNT": series.weeks})
    gone = [series.week_start(w) for w in range(1, series.weeks + 1) if w not in standing]
    if gone and not cancelled:
        master.add("exdate", gone)
    cal.add_component(master)
    for week, booking in sorted(standing.items()):
        original = series.week_start(week or 1)
        if booking.slot.start == original:
            continue
        moved = booking_event(
            booking,
            Version(
                start=booking.slot.start,
                end=booking.slot.end,
                sequence=series.sequence,
                cancelled=False,
            ),
            stamp=stamp,
            for_tutor=for_tutor,
        )
        moved.pop("UID")
        moved.add("uid", series.calendar_uid)
        moved.add("recurrence-id", original)
        cal.add_component(moved)
    # Only the series' own stretch of the zone's history: a short VTIMEZONE of plain
    # transitions, which every parser reads (dateutil, behind vobject and many
    # clients, ignores the RDATE lists a 1970–2038 one needs).
    first_day = series.first_start.date() - timedelta(days=7)
    last_day = series.week_start(series.weeks).date() + timedelta(days=7)
    cal.subcomponents.insert(
        0, Timezone.from_tzid(series.timezone, first_date=first_day, last_date=last_day)
    )
    return cal.to_ical()
