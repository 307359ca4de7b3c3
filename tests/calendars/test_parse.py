"""calendars.parse: which events of a real-world shaped calendar are busy, and when."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendars import parse

from . import feeds

NY = ZoneInfo("America/New_York")
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def busy(body: bytes, **kwargs: object) -> list[tuple[datetime, datetime]]:
    kwargs.setdefault("zone", NY)
    return parse.busy_times([body], start=MARCH, end=MAY, **kwargs)  # type: ignore[arg-type]


def test_a_weekly_google_series_keeps_its_wall_clock_time_across_the_dst_change() -> None:
    times = busy(feeds.google())
    starts = [lo.astimezone(NY) for lo, _ in times]
    assert local(2026, 3, 3, 18) in starts  # EST
    assert local(2026, 3, 10, 18) in starts  # EDT: one hour earlier in UTC
    assert times[0] == (datetime(2026, 3, 3, 23, tzinfo=UTC), datetime(2026, 3, 4, 0, tzinfo=UTC))
    assert times[1] == (
        datetime(2026, 3, 10, 22, tzinfo=UTC),
        datetime(2026, 3, 10, 23, tzinfo=UTC),
    )


def test_an_exdate_removes_its_occurrence_and_a_recurrence_id_moves_its_own() -> None:
    starts = [lo.astimezone(NY) for lo, _ in busy(feeds.google())]
    assert local(2026, 3, 17, 18) not in starts
    assert local(2026, 3, 24, 18) not in starts
    assert local(2026, 3, 24, 20) in starts
    assert len(starts) == 7  # COUNT=8, one excluded


def test_free_and_cancelled_events_are_not_busy() -> None:
    starts = [lo.astimezone(NY) for lo, _ in busy(feeds.google())]
    assert local(2026, 3, 5, 18) not in starts
    assert local(2026, 3, 12, 18) not in starts


def test_an_icloud_vtimezone_event_is_read_in_its_own_zone() -> None:
    times = busy(feeds.icloud())
    assert (local(2026, 3, 12, 19), local(2026, 3, 12, 20)) in times


def test_an_all_day_event_covers_the_tutors_whole_day() -> None:
    assert (local(2026, 3, 19), local(2026, 3, 20)) in busy(feeds.icloud())


def test_an_all_day_event_follows_the_calendars_declared_zone() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "X-WR-TIMEZONE:Europe/Berlin",
        "BEGIN:VEVENT",
        "UID:day@x",
        "DTSTART;VALUE=DATE:20260319",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    berlin = ZoneInfo("Europe/Berlin")
    assert busy(body) == [
        (datetime(2026, 3, 19, tzinfo=berlin), datetime(2026, 3, 20, tzinfo=berlin))
    ]


def test_a_floating_time_is_the_tutors_wall_clock() -> None:
    assert (local(2026, 3, 26, 19), local(2026, 3, 26, 20)) in busy(feeds.icloud())


def test_events_of_ours_are_left_out() -> None:
    uid = "booking-0b9d7c4e-8f1a-4d2b-9c3e-5a6b7c8d9e0f@book.example.com"
    body = feeds.google(
        feeds.our_session_event(uid, local(2026, 3, 26, 20), local(2026, 3, 26, 21))
    )
    assert (local(2026, 3, 26, 20), local(2026, 3, 26, 21)) in busy(body)
    assert (local(2026, 3, 26, 20), local(2026, 3, 26, 21)) not in busy(
        body, ours=lambda u: u == uid
    )


def test_times_are_clipped_to_the_window_and_joined_where_they_touch() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:long@x",
        "DTSTART:20260220T000000Z",
        "DTEND:20260302T100000Z",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:next@x",
        "DTSTART:20260302T100000Z",
        "DTEND:20260302T110000Z",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:moment@x",
        "DTSTART:20260303T100000Z",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    assert busy(body) == [(MARCH, datetime(2026, 3, 2, 11, tzinfo=UTC))]


def test_an_endless_series_is_read_only_as_far_as_the_window() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:daily@x",
        "DTSTART:20200101T120000Z",
        "DTEND:20200101T130000Z",
        "RRULE:FREQ=DAILY",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    times = busy(body)
    assert len(times) == (MAY - MARCH).days
    assert times[-1][0] < MAY


def test_a_calendar_with_too_many_busy_times_is_refused() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:minutely@x",
        "DTSTART:20260301T000000Z",
        "DTEND:20260301T000030Z",
        "RRULE:FREQ=MINUTELY",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    with pytest.raises(parse.NotACalendar, match="repeats every minute"):
        busy(body)


def test_a_calendar_with_more_busy_times_than_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parse, "MAX_BUSY_TIMES", 100)
    body = feeds.many_events(2000, first=MARCH)
    with pytest.raises(parse.NotACalendar, match="more than 100 busy times"):
        busy(body)


def test_an_unreadable_event_is_skipped_and_the_others_count() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:broken@x",
        "DTSTART:2026-03-03",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:fine@x",
        "DTSTART:20260303T100000Z",
        "DTEND:20260303T110000Z",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    assert busy(body) == [
        (datetime(2026, 3, 3, 10, tzinfo=UTC), datetime(2026, 3, 3, 11, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><body>Sign in to continue</body></html>",
        b"",
        b"BEGIN:VCALENDAR\r\nthis is not a content line\r\n",
        b"\x89PNG\r\n\x1a\n",
    ],
)
def test_what_is_not_a_calendar_says_so(body: bytes) -> None:
    with pytest.raises(parse.NotACalendar, match="not a calendar"):
        busy(body)


def test_an_empty_calendar_has_no_busy_times() -> None:
    assert busy(feeds.crlf("BEGIN:VCALENDAR", "VERSION:2.0", "END:VCALENDAR")) == []


def test_of_a_few_thousand_events_only_those_in_the_window_are_busy() -> None:
    # Every 3 hours from 100 days before the window: 70 days × 8 a day in it. (How
    # fast this is, is bench/calendars.py's to measure.)
    body = feeds.many_events(2000, first=MARCH - timedelta(days=100))
    times = parse.busy_times([body], zone=NY, start=MARCH, end=MARCH + timedelta(days=70))
    assert len(times) == 560
    assert times[0] == (MARCH, MARCH + timedelta(hours=1))


def test_an_outlook_calendar_with_windows_zone_names_keeps_its_wall_clock_time() -> None:
    times = busy(feeds.outlook(), zone=ZoneInfo("Europe/London"))
    assert times == [
        (local(2026, 3, 3, 18), local(2026, 3, 3, 19)),  # EST
        (local(2026, 3, 10, 18), local(2026, 3, 10, 19)),  # EDT
        (local(2026, 3, 17, 18), local(2026, 3, 17, 19)),
        (local(2026, 3, 24, 18), local(2026, 3, 24, 19)),
        (local(2026, 3, 31, 18), local(2026, 3, 31, 19)),
    ]


def test_old_one_off_events_are_dropped_unparsed_without_changing_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = feeds.google() + feeds.many_events(500, first=MARCH - timedelta(days=60))
    body = body.replace(b"END:VCALENDAR\r\nBEGIN:VCALENDAR", b"")  # one calendar
    fast = busy(body)
    assert parse._without_history(body.decode(), MARCH.date()).count("BEGIN:VEVENT") < 500
    monkeypatch.setattr(parse, "_without_history", lambda text, before: text)
    assert busy(body) == fast


def test_a_zone_name_with_digits_does_not_make_an_event_look_old() -> None:
    body = feeds.crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:mozilla@x",
        "DTSTART;TZID=/mozilla.org/20050126_1/America/New_York:20260303T180000",
        "DTEND;TZID=/mozilla.org/20050126_1/America/New_York:20260303T190000",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    assert parse._without_history(body.decode(), MARCH.date()).count("BEGIN:VEVENT") == 1
