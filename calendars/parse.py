"""iCalendar text → the times a tutor is busy, with icalendar and recurring_ical_events.

What counts as busy, and when:
- every VEVENT occurrence in the window, recurrences expanded by recurring_ical_events
  (RRULE, RDATE, EXDATE, and RECURRENCE-ID overrides, which replace their occurrence);
- except events marked free (TRANSP:TRANSPARENT), cancelled (STATUS:CANCELLED), and
  events of ours: the tutor's copies of their own sessions (their UIDs), which must not
  hide the very slots they were booked in;
- all-day events cover the whole day in the calendar's zone (X-WR-TIMEZONE) or else the
  tutor's; floating times (no zone) are read in the calendar's zone or else the tutor's;
- an event without an end (and no DURATION) is a moment, not busy time; one day for an
  all-day event (RFC 5545 §3.6.1).
Overlapping and touching times are joined, so a source stores few rows.
"""

import re
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

# More busy times than this in one source's window is not a calendar we can use (an
# event repeating every minute, say): refused rather than stored.
MAX_BUSY_TIMES = 50_000

Interval = tuple[datetime, datetime]
CHUNK = timedelta(days=7)
# One-off events that ended this long before the window are dropped unparsed.
HISTORY_MARGIN = timedelta(days=3)


class NotACalendar(ValueError):
    """The body is not iCalendar; str() is what the tutor reads."""

    def __init__(self, message: str = "not a calendar") -> None:
        super().__init__(message)


def _calendars(body: bytes | str, *, history_before: date) -> list[icalendar.Calendar]:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.lstrip("\ufeff \t\r\n")
    if not text.upper().startswith("BEGIN:VCALENDAR"):
        raise NotACalendar()
    text = _without_history(text, history_before)
    try:
        components = icalendar.Calendar.from_ical(text, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError):
        raise NotACalendar() from None
    calendars = [c for c in components if c.name == "VCALENDAR"]
    if not calendars:
        raise NotACalendar()
    return calendars


# A VEVENT block, and the lines of one that decide whether it is history.
_VEVENT = re.compile(r"^BEGIN:VEVENT\r?\n.*?^END:VEVENT[^\n]*(?:\n|\Z)", re.M | re.S | re.I)
_FOLD = re.compile(r"\r?\n[ \t]")
_REPEATS = re.compile(r"^(?:RRULE|RDATE|RECURRENCE-ID|DURATION)[;:]", re.M | re.I)
# The value is after the line's last colon (parameters such as a TZID come before it,
# and may hold digits of their own).
_DTEND = re.compile(r"^DTEND[;:](?:[^\n]*:)?(\d{4})(\d{2})(\d{2})", re.M | re.I)
_DTSTART = re.compile(r"^DTSTART[;:](?:[^\n]*:)?(\d{4})(\d{2})(\d{2})", re.M | re.I)


def _without_history(text: str, before: date) -> str:
    """The calendar without its one-off events that ended before `before`.

    Exports carry years of history (Google's hold everything), and icalendar's parser
    costs about half a millisecond per event: a text pass drops what cannot matter
    first. Only plain single events whose end (or start) date is clearly past are
    dropped; anything that repeats, overrides a repetition, has a DURATION or a date
    this pass cannot read goes to icalendar whole. `before` lies days before the window,
    so no time zone can bring a dropped event back into it.
    """

    def keep(match: re.Match[str]) -> str:
        block = match.group(0)
        lines = _FOLD.sub("", block)
        if _REPEATS.search(lines):
            return block
        found = _DTEND.search(lines) or _DTSTART.search(lines)
        if found is None:
            return block
        try:
            day = date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            return block
        return "" if day < before else block

    return _VEVENT.sub(keep, text)


def _zone_of(calendar: icalendar.Calendar, default: ZoneInfo) -> ZoneInfo:
    name = str(calendar.get("X-WR-TIMEZONE", "")).strip()
    try:
        return ZoneInfo(name) if name else default
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return default


def _utc(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _end_of(event: icalendar.Event, start: date | datetime) -> date | datetime:
    end = event.DTEND
    if end is not None:
        return end
    duration = event.DURATION
    if duration is not None:
        return start + duration
    if isinstance(start, datetime):
        return start
    return start + timedelta(days=1)


def busy_times(
    bodies: Iterable[bytes | str],
    *,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    ours: Callable[[str], bool] = lambda uid: False,
) -> list[Interval]:
    """The busy times in `bodies` (one or several iCalendar texts) that touch
    [start, end), clipped to it, joined, sorted. Raises NotACalendar.

    Occurrences are read a week at a time (recurring_ical_events' between(); its
    after() is far slower on calendars with thousands of events), so a calendar with
    more than MAX_BUSY_TIMES is refused before it fills memory.
    """
    found: list[Interval] = []
    for body in bodies:
        for calendar in _calendars(body, history_before=(start - HISTORY_MARGIN).date()):
            _refuse_runaway_series(calendar)
            local = _zone_of(calendar, zone)
            query = recurring_ical_events.of(calendar, skip_bad_series=True)
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(chunk_start + CHUNK, end)
                try:
                    events = query.between(chunk_start, chunk_end)
                    for event in events:
                        if not _busy(event, ours):
                            continue
                        first = event.DTSTART
                        lo = max(_utc(first, local), start)
                        hi = min(_utc(_end_of(event, first), local), end)
                        if lo < hi:
                            found.append((lo, hi))
                except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
                    raise NotACalendar("not a calendar (an event could not be read)") from None
                if len(found) > MAX_BUSY_TIMES:
                    raise NotACalendar(f"more than {MAX_BUSY_TIMES:,} busy times in the next weeks")
                chunk_start = chunk_end
    return join(found)


def _refuse_runaway_series(calendar: icalendar.Calendar) -> None:
    for event in calendar.walk("VEVENT"):
        rule = event.get("RRULE")
        for freq in rule.get("FREQ", []) if rule is not None else []:
            if str(freq).upper() in ("SECONDLY", "MINUTELY"):
                raise NotACalendar("not a calendar we can use (an event repeats every minute)")


def _busy(event: icalendar.Event, ours: Callable[[str], bool]) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    return not ours(str(event.get("UID", "")))


def join(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    joined: list[Interval] = []
    for lo, hi in sorted(intervals):
        if joined and lo <= joined[-1][1]:
            if hi > joined[-1][1]:
                joined[-1] = (joined[-1][0], hi)
        else:
            joined.append((lo, hi))
    return joined
