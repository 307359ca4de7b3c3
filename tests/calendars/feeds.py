"""Calendars shaped like the ones real providers publish (CRLF lines, folding, VTIMEZONE
blocks, the properties each one adds), for the tutor's March 2026 evenings in New York
(rule: Tue and Thu 18:00–21:00; clocks spring forward on 8 March, Berlin's on 29 March).
"""

from datetime import UTC, datetime, timedelta


def crlf(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


NEW_YORK_VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:America/New_York",
    "X-LIC-LOCATION:America/New_York",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "TZNAME:EDT",
    "DTSTART:19700308T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "TZNAME:EST",
    "DTSTART:19701101T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)

POTTERY_UID = "7kukuqrfedmk4c8u0lhq1i5vdp@google.com"


def google(*extra_events: str) -> bytes:
    """A Google Calendar "secret address in iCal format" export.

    - Pottery: weekly on Tuesdays 18:00–19:00 New York from 3 March, 8 times, across the
      DST change; 17 March cancelled (EXDATE); 24 March moved to 20:00–21:00
      (RECURRENCE-ID override).
    - Thu 5 March 18:00: a reminder marked free (TRANSP:TRANSPARENT).
    - Thu 12 March 18:00: a cancelled event (STATUS:CANCELLED).
    """
    return crlf(
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:ada.park@gmail.com",
        "X-WR-TIMEZONE:America/New_York",
        *NEW_YORK_VTIMEZONE,
        "BEGIN:VEVENT",
        "DTSTART;TZID=America/New_York:20260303T180000",
        "DTEND;TZID=America/New_York:20260303T190000",
        "RRULE:FREQ=WEEKLY;WKST=SU;COUNT=8;BYDAY=TU",
        "EXDATE;TZID=America/New_York:20260317T180000",
        "DTSTAMP:20260301T120000Z",
        f"UID:{POTTERY_UID}",
        "CREATED:20260215T101010Z",
        "DESCRIPTION:Bring the apron. The studio is on the second floor\\, ring the b",
        " ell twice.",
        "LAST-MODIFIED:20260220T090000Z",
        "LOCATION:Clay Studio\\, 123 Main St",
        "SEQUENCE:1",
        "STATUS:CONFIRMED",
        "SUMMARY:Pottery",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "DTSTART;TZID=America/New_York:20260324T200000",
        "DTEND;TZID=America/New_York:20260324T210000",
        "DTSTAMP:20260301T120000Z",
        f"UID:{POTTERY_UID}",
        "RECURRENCE-ID;TZID=America/New_York:20260324T180000",
        "CREATED:20260215T101010Z",
        "LAST-MODIFIED:20260221T090000Z",
        "SEQUENCE:2",
        "STATUS:CONFIRMED",
        "SUMMARY:Pottery (late this week)",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "DTSTART:20260305T230000Z",
        "DTEND:20260306T000000Z",
        "DTSTAMP:20260301T120000Z",
        "UID:0free0reminder0@google.com",
        "SUMMARY:Call mum (free)",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "DTSTART;TZID=America/New_York:20260312T180000",
        "DTEND;TZID=America/New_York:20260312T190000",
        "DTSTAMP:20260301T120000Z",
        "UID:0cancelled0dentist0@google.com",
        "STATUS:CANCELLED",
        "SUMMARY:Dentist",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        *extra_events,
        "END:VCALENDAR",
    )


def our_session_event(uid: str, start: datetime, end: datetime) -> str:
    """The tutor's copy of one of our sessions (Gmail adds our invites to the calendar)."""
    return "\r\n".join(
        (
            "BEGIN:VEVENT",
            f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            "DTSTAMP:20260301T120000Z",
            f"UID:{uid}",
            "SUMMARY:Python (video) with Sam Student",
            "STATUS:CONFIRMED",
            "TRANSP:OPAQUE",
            "END:VEVENT",
        )
    )


def icloud() -> bytes:
    """An iCloud public calendar (webcal://pXX-caldav.icloud.com/published/2/...):

    - a Berlin workshop with its own VTIMEZONE: Fri 13 March 00:00–01:00 Berlin
      (still winter time there: UTC+1) = Thu 12 March 19:00–20:00 New York (already
      summer time: the zones are 5 hours apart that week, not 6);
    - an all-day event, Thu 19 March (the whole day in the tutor's zone);
    - a floating event (no zone): Thu 26 March 19:00–20:00, the tutor's wall clock.
    """
    return crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//macOS 14.3//EN",
        "CALSCALE:GREGORIAN",
        "X-WR-CALNAME:Work",
        "X-APPLE-CALENDAR-COLOR:#1BADF8",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "DTSTART:19810329T020000",
        "TZNAME:CEST",
        "TZOFFSETTO:+0200",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "DTSTART:19961027T030000",
        "TZNAME:CET",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "CREATED:20260210T081500Z",
        "DTEND;TZID=Europe/Berlin:20260313T010000",
        "DTSTAMP:20260210T081500Z",
        "DTSTART;TZID=Europe/Berlin:20260313T000000",
        "LAST-MODIFIED:20260210T081500Z",
        "SEQUENCE:0",
        "SUMMARY:Workshop call (Berlin)",
        "UID:5B8C3E2A-7F1D-4E59-9C1A-2D3B4C5D6E7F",
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "CREATED:20260210T081600Z",
        "DTEND;VALUE=DATE:20260320",
        "DTSTAMP:20260210T081600Z",
        "DTSTART;VALUE=DATE:20260319",
        "SEQUENCE:0",
        "SUMMARY:Conference",
        "TRANSP:OPAQUE",
        "UID:9E1D2C3B-4A5F-4E6D-8C7B-6A5F4E3D2C1B",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "CREATED:20260210T081700Z",
        "DTEND:20260326T200000",
        "DTSTAMP:20260210T081700Z",
        "DTSTART:20260326T190000",
        "SEQUENCE:0",
        "SUMMARY:Floating: choir",
        "UID:1A2B3C4D-5E6F-4A7B-8C9D-0E1F2A3B4C5D",
        "END:VEVENT",
        "END:VCALENDAR",
    )


def autumn() -> bytes:
    """Thursdays 18:00–19:00 New York on 29 October (summer time) and 5 November
    (winter time): one weekly series across the fall-back change."""
    return crlf(
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "X-WR-TIMEZONE:America/New_York",
        *NEW_YORK_VTIMEZONE,
        "BEGIN:VEVENT",
        "DTSTART;TZID=America/New_York:20261029T180000",
        "DTEND;TZID=America/New_York:20261029T190000",
        "RRULE:FREQ=WEEKLY;COUNT=2",
        "DTSTAMP:20261001T120000Z",
        "UID:choir-autumn@google.com",
        "SUMMARY:Choir",
        "END:VEVENT",
        "END:VCALENDAR",
    )


def many_events(count: int, *, first: datetime, uid_prefix: str = "e") -> bytes:
    """`count` one-hour events, one every 3 hours from `first` (for the size limits and
    the benchmark), with the fields a real export carries."""
    lines = ["BEGIN:VCALENDAR", "PRODID:-//Tests//Many//EN", "VERSION:2.0"]
    for i in range(count):
        start = first + timedelta(hours=3 * i)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid_prefix}{i}@example.com",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Event {i}",
            "DESCRIPTION:Some notes about this event that a real calendar would carry a",
            " long with it.",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return crlf(*lines)


def outlook() -> bytes:
    """An Outlook / Exchange published calendar (…/owa/calendar/…/calendar.ics): Windows
    zone names ("Eastern Standard Time") with their own VTIMEZONE, and Microsoft's
    properties. A weekly Tuesday 18:00–19:00 series from 3 March until 31 March, across
    New York's DST change, and one event marked free."""
    return crlf(
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
        "PRODID:Microsoft Exchange Server 2010",
        "VERSION:2.0",
        "X-WR-CALNAME:Calendar",
        "BEGIN:VTIMEZONE",
        "TZID:Eastern Standard Time",
        "BEGIN:STANDARD",
        "DTSTART:16010101T020000",
        "TZOFFSETFROM:-0400",
        "TZOFFSETTO:-0500",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:16010101T020000",
        "TZOFFSETFROM:-0500",
        "TZOFFSETTO:-0400",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "DESCRIPTION:\\n",
        "RRULE:FREQ=WEEKLY;UNTIL=20260331T220000Z;INTERVAL=1;BYDAY=TU;WKST=SU",
        "UID:040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A60100000000000000001000000",
        " 0ABCDEF0123456789ABCDEF012345",
        "SUMMARY:Team sync",
        "DTSTART;TZID=Eastern Standard Time:20260303T180000",
        "DTEND;TZID=Eastern Standard Time:20260303T190000",
        "CLASS:PUBLIC",
        "PRIORITY:5",
        "DTSTAMP:20260301T120000Z",
        "TRANSP:OPAQUE",
        "STATUS:CONFIRMED",
        "SEQUENCE:0",
        "LOCATION:Teams",
        "X-MICROSOFT-CDO-APPT-SEQUENCE:0",
        "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
        "X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY",
        "X-MICROSOFT-CDO-ALLDAYEVENT:FALSE",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:040000008200E00074C5B7101A82E008000000000000000000000000000000000000000000000001",
        "SUMMARY:Lunch (tentative, free)",
        "DTSTART;TZID=Eastern Standard Time:20260305T120000",
        "DTEND;TZID=Eastern Standard Time:20260305T130000",
        "DTSTAMP:20260301T120000Z",
        "TRANSP:TRANSPARENT",
        "X-MICROSOFT-CDO-BUSYSTATUS:FREE",
        "END:VEVENT",
        "END:VCALENDAR",
    )
