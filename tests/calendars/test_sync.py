"""calendars.services.source_sync against the local feed server: busy times stored per
source, replaced on success, kept on failure; back-off, giving up, conflicts."""

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from bookings import ics, notifications
from bookings import services as booking_services
from bookings.errors import ApplicationError
from bookings.models import (
    BookingStatus,
    BusyInterval,
    Notification,
    NotificationKind,
    Offering,
    Tutor,
)
from calendars import fetch, parse, selectors, services, tasks
from calendars.models import CalendarSource
from tests.test_settings import example_env, manage

from . import feeds
from .conftest import MARCH, FeedServer, add_source, confirm, evening_rule, slot_at, sync

NY = ZoneInfo("America/New_York")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.fixture
def evenings(tutor: Tutor, offerings: tuple[Offering, Offering]) -> Tutor:
    evening_rule(tutor, offerings, MARCH)
    return tutor


def busy_of(source: CalendarSource) -> list[tuple[datetime, datetime]]:
    rows = BusyInterval.objects.filter(source=source.pk).order_by("start")
    return [(b.start.astimezone(NY), b.end.astimezone(NY)) for b in rows]


def test_a_google_feed_becomes_busy_times_of_its_source(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    result = sync(source, MARCH)
    assert (result.outcome, result.busy) == ("changed", 7)
    assert busy_of(source)[:3] == [
        (local(2026, 3, 3, 18), local(2026, 3, 3, 19)),
        (local(2026, 3, 10, 18), local(2026, 3, 10, 19)),
        (local(2026, 3, 24, 20), local(2026, 3, 24, 21)),
    ]
    source.refresh_from_db()
    assert (source.busy_count, source.last_success_at, source.last_error) == (7, MARCH, "")
    assert source.next_sync_at == MARCH + timedelta(minutes=10)
    assert source.claimed_until is None


def test_an_unchanged_feed_answers_304_and_keeps_its_busy_times(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    url = feeds_server.serve("/g.ics", feeds.google(), etag='"abc"')
    source = add_source(evenings, url, MARCH)
    sync(source, MARCH)
    later = MARCH + timedelta(minutes=10)
    assert sync(source, later).outcome == "unchanged"
    assert feeds_server.requests[-1][1]["If-None-Match"] == '"abc"'
    assert len(busy_of(source)) == 7
    source.refresh_from_db()
    assert source.last_success_at == later


def test_a_feed_is_fetched_in_full_again_once_its_expansion_no_longer_covers_the_horizon(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    url = feeds_server.serve("/g.ics", feeds.google(), etag='"abc"')
    source = add_source(evenings, url, MARCH)
    sync(source, MARCH)
    sync(source, MARCH + timedelta(days=15))
    assert "If-None-Match" not in feeds_server.requests[-1][1]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"body": b"<html>Sign in</html>"}, "not a calendar"),
        ({"body": b"", "status": 404}, "404 from 127.0.0.1"),
        ({"body": b"", "status": 500}, "500 from 127.0.0.1"),
        ({"hang": True}, "127.0.0.1 did not answer within 0.5 seconds"),
    ],
)
def test_a_failing_feed_keeps_its_last_good_busy_times(
    evenings: Tutor,
    feeds_server: FeedServer,
    calendar_settings: Any,
    answer: dict[str, Any],
    error: str,
) -> None:
    calendar_settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 0.5
    url = feeds_server.serve("/g.ics", feeds.google())
    source = add_source(evenings, url, MARCH)
    sync(source, MARCH)
    feeds_server.serve("/g.ics", **answer)
    later = MARCH + timedelta(minutes=10)
    result = sync(source, later)
    assert (result.outcome, result.error) == ("failed", error)
    assert len(busy_of(source)) == 7
    source.refresh_from_db()
    assert (source.last_error, source.last_error_at, source.failures) == (error, later, 1)
    assert source.last_success_at == MARCH
    assert source.busy_count == 7


def test_a_feed_over_the_size_limit_fails_in_plain_words(
    evenings: Tutor, feeds_server: FeedServer, calendar_settings: Any
) -> None:
    calendar_settings.CALENDAR_MAX_BYTES = 64 * 1024
    body = feeds.many_events(2000, first=MARCH)
    source = add_source(evenings, feeds_server.serve("/big.ics", body), MARCH)
    assert sync(source, MARCH).error == "the calendar is larger than 64 KB"


def test_failures_back_off_and_a_source_failing_for_days_stops_with_one_email(
    evenings: Tutor, feeds_server: FeedServer, django_capture_on_commit_callbacks: Any
) -> None:
    source = add_source(evenings, feeds_server.url("/gone.ics"), MARCH)
    gaps = []
    now = MARCH
    with django_capture_on_commit_callbacks(execute=True):
        while True:
            assert services.source_sync(source_id=source.pk, now=now).outcome == "failed"
            source.refresh_from_db()
            if source.stopped_at is not None:
                break
            assert source.next_sync_at is not None
            gaps.append(source.next_sync_at - now)
            now = source.next_sync_at
    assert gaps[:5] == [timedelta(minutes=m) for m in (10, 20, 40, 80, 160)]
    assert max(gaps) == timedelta(hours=6)
    assert now - MARCH >= timedelta(days=7)
    assert services.sources_due(now=now + timedelta(days=1)) == []
    assert services.source_sync(source_id=source.pk, now=now + timedelta(days=1)).outcome == (
        "skipped"
    )
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == "Calendar “Personal” stopped syncing"
    assert "404 from 127.0.0.1" in email.body
    assert "/tutor/calendars/" in email.body
    # The notice is claimed once: the beat task finds nothing more to send.
    assert services.stop_notices_due() == []
    assert services.stop_notice_send(source_id=source.pk, now=now) is False


def test_sync_now_brings_a_stopped_source_back(evenings: Tutor, feeds_server: FeedServer) -> None:
    source = add_source(evenings, feeds_server.url("/g.ics"), MARCH)
    CalendarSource.objects.filter(pk=source.pk).update(
        stopped_at=MARCH, failing_since=MARCH - timedelta(days=8), failures=30
    )
    feeds_server.serve("/g.ics", feeds.google())
    later = MARCH + timedelta(days=1)
    assert sync(source, later).outcome == "changed"
    source.refresh_from_db()
    assert (source.stopped_at, source.failures, source.failing_since) == (None, 0, None)


def test_a_source_being_synced_is_not_synced_twice(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    CalendarSource.objects.filter(pk=source.pk).update(claimed_until=MARCH + timedelta(minutes=5))
    assert sync(source, MARCH).outcome == "skipped"
    assert feeds_server.requests == []
    # A claim left by a worker that died lapses.
    assert sync(source, MARCH + timedelta(minutes=6)).outcome == "changed"


def test_only_due_active_sources_are_picked_by_beat(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    due = add_source(evenings, feeds_server.url("/a.ics"), MARCH)
    later = add_source(evenings, feeds_server.url("/b.ics"), MARCH)
    paused = add_source(evenings, feeds_server.url("/c.ics"), MARCH)
    CalendarSource.objects.filter(pk=later.pk).update(next_sync_at=MARCH + timedelta(hours=1))
    services.source_update(source=paused, now=MARCH, is_active=False)
    assert services.sources_due(now=MARCH) == [due.pk]


def test_a_busy_time_over_a_confirmed_session_warns_the_tutor_once(
    evenings: Tutor, feeds_server: FeedServer, mailoutbox: list[Any]
) -> None:
    booking = confirm(slot_at(evenings, local(2026, 3, 3, 18)), MARCH)
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    sync(source, MARCH)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED  # the session stands
    [warning] = Notification.objects.filter(kind=NotificationKind.BUSY_CONFLICT)
    assert (warning.booking_id, warning.recipient) == (booking.pk, "tutor")
    sync(source, MARCH + timedelta(minutes=10))
    sync(source, MARCH + timedelta(minutes=20))
    assert Notification.objects.filter(kind=NotificationKind.BUSY_CONFLICT).count() == 1

    [conflict] = selectors.tutor_conflicts(tutor=evenings, now=MARCH)
    assert conflict.booking == booking
    assert conflict.busy_start == local(2026, 3, 3, 18)

    mailoutbox.clear()
    assert notifications.deliver(warning.pk, now=MARCH) == "sent"
    [email] = mailoutbox
    assert email.to == ["ada@example.com"]
    assert (
        email.subject
        == "Your calendar is busy during Sam Student's session on Tue 3 Mar, 18:00 New York time"
    )
    assert "Personal" in email.body
    assert "still stands" in email.body
    # What the tutor can do: keep, move or cancel it.
    for choice in ("To keep it, do nothing", "To move it", "To cancel it"):
        assert choice in email.body
    assert f"/tutor/bookings/{booking.pk}/" in email.body
    assert booking.manage_token not in email.body


def test_the_warning_is_dropped_if_the_session_was_cancelled_before_it_went_out(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    from bookings import services as booking_services
    from bookings.models import Actor

    booking = confirm(slot_at(evenings, local(2026, 3, 3, 18)), MARCH)
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    sync(source, MARCH)
    booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.TUTOR, now=MARCH)
    warning = Notification.objects.get(kind=NotificationKind.BUSY_CONFLICT)
    assert notifications.deliver(warning.pk, now=MARCH) == "void"


def test_our_own_sessions_in_the_tutors_calendar_block_nothing(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    slot = slot_at(evenings, local(2026, 3, 26, 20))
    booking = confirm(slot, MARCH)
    mine = feeds.our_session_event(ics.booking_uid(booking), slot.start, slot.end)
    foreign = feeds.our_session_event(
        "booking-00000000-0000-4000-8000-000000000000@testserver",
        local(2026, 4, 2, 20),
        local(2026, 4, 2, 21),
    )
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google(mine, foreign)), MARCH)
    sync(source, MARCH)
    assert (slot.start, slot.end) not in busy_of(source)
    assert (local(2026, 4, 2, 20), local(2026, 4, 2, 21)) in busy_of(source)
    assert not Notification.objects.filter(kind=NotificationKind.BUSY_CONFLICT).exists()


def test_removing_a_source_forgets_its_busy_times(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    other = add_source(evenings, feeds_server.serve("/i.ics", feeds.icloud()), MARCH, name="Work")
    sync(source, MARCH)
    sync(other, MARCH)
    services.source_delete(source=source, now=MARCH)
    assert not CalendarSource.objects.filter(pk=source.pk).exists()
    assert BusyInterval.objects.filter(source=source.pk).count() == 0
    assert BusyInterval.objects.filter(source=other.pk).count() == 3


def test_a_new_source_is_synced_at_once_by_a_worker(
    evenings: Tutor, feeds_server: FeedServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = feeds_server.serve("/g.ics", feeds.google())
    with django_capture_on_commit_callbacks(execute=True):
        source = add_source(evenings, url, MARCH)
    source.refresh_from_db()
    assert source.last_success_at is not None  # (the task reads the real clock)
    assert [path for path, _ in feeds_server.requests] == ["/g.ics"]


def test_only_a_sync_that_changes_busy_times_raises_the_availability_version(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    def version() -> int:
        return Tutor.objects.values_list("availability_version", flat=True).get(pk=evenings.pk)

    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    before = version()
    sync(source, MARCH)
    after_first = version()
    assert after_first > before
    sync(source, MARCH + timedelta(minutes=10))  # same calendar: nothing rewritten
    assert version() == after_first
    feeds_server.serve("/g.ics", feeds.icloud())
    sync(source, MARCH + timedelta(minutes=20))
    assert version() > after_first
    changed = version()
    services.source_delete(source=source, now=MARCH)
    assert version() > changed


def test_a_source_removed_while_it_was_being_fetched_leaves_no_busy_time_behind(
    evenings: Tutor, feeds_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    real = fetch.fetch_ics

    def removed_meanwhile(*args: Any, **kwargs: Any) -> fetch.Fetched:
        services.source_delete(source=source, now=MARCH)
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch, "fetch_ics", removed_meanwhile)
    assert sync(source, MARCH).outcome == "skipped"
    assert not BusyInterval.objects.exists()


def test_a_source_given_a_new_address_while_it_was_being_fetched_is_synced_again(
    evenings: Tutor, feeds_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = add_source(evenings, feeds_server.serve("/old.ics", feeds.google()), MARCH)
    new_url = feeds_server.serve("/new.ics", feeds.icloud())
    real = fetch.fetch_ics

    def moved_meanwhile(*args: Any, **kwargs: Any) -> fetch.Fetched:
        services.source_update(source=source, now=MARCH, url=new_url)
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch, "fetch_ics", moved_meanwhile)
    assert sync(source, MARCH).outcome == "skipped"
    assert busy_of(source) == []  # the old address's busy times were not stored
    source.refresh_from_db()
    assert (source.next_sync_at, source.claimed_until) == (MARCH, None)
    monkeypatch.setattr(fetch, "fetch_ics", real)
    assert sync(source, MARCH).busy == 3
    assert [path for path, _ in feeds_server.requests] == ["/old.ics", "/new.ics"]


def test_when_the_tutor_moves_all_day_and_floating_events_are_read_again_in_the_new_zone(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    url = feeds_server.serve("/i.ics", feeds.icloud(), etag='"same"')
    source = add_source(evenings, url, MARCH)
    sync(source, MARCH)
    assert (local(2026, 3, 19), local(2026, 3, 20)) in busy_of(source)
    booking_services.tutor_save(tutor=evenings, now=MARCH, timezone="America/Los_Angeles")
    sync(source, MARCH + timedelta(minutes=10))
    # Fetched in full (not answered 304) and read in the tutor's new zone.
    assert "If-None-Match" not in feeds_server.requests[-1][1]
    la = ZoneInfo("America/Los_Angeles")
    stored = [(lo.astimezone(la), hi.astimezone(la)) for lo, hi in busy_of(source)]
    assert (datetime(2026, 3, 19, tzinfo=la), datetime(2026, 3, 20, tzinfo=la)) in stored
    assert (datetime(2026, 3, 26, 19, tzinfo=la), datetime(2026, 3, 26, 20, tzinfo=la)) in stored
    # Read once in the new zone, the 304 is trusted again.
    sync(source, MARCH + timedelta(minutes=20))
    assert feeds_server.requests[-1][1]["If-None-Match"] == '"same"'


def test_an_unexpected_error_is_recorded_as_a_failure_and_still_raised(
    evenings: Tutor, feeds_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    sync(source, MARCH)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(parse, "busy_times", broken)
    feeds_server.serve("/g.ics", feeds.icloud())  # changed: parsed again
    later = MARCH + timedelta(minutes=10)
    with pytest.raises(RuntimeError, match="a bug"):
        sync(source, later)
    source.refresh_from_db()
    assert source.last_error == "an unexpected error on our side: we are looking into it"
    assert (source.failures, source.claimed_until) == (1, None)
    assert source.next_sync_at == later + timedelta(minutes=10)
    assert len(busy_of(source)) == 7  # the last good busy times stay


def test_the_beat_task_syncs_due_sources_and_sends_owed_stop_notices(
    evenings: Tutor, feeds_server: FeedServer, mailoutbox: list[Any]
) -> None:
    due = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    stopped = add_source(evenings, feeds_server.url("/gone.ics"), MARCH, name="Old")
    CalendarSource.objects.filter(pk=stopped.pk).update(
        stopped_at=MARCH, failing_since=MARCH - timedelta(days=8), last_error="404 from x"
    )
    with time_machine.travel(MARCH + timedelta(minutes=1), tick=False):
        assert tasks.sync_due() == {"queued": 1, "stop_notices": 1}
    assert len(busy_of(due)) == 7
    [notice] = mailoutbox
    assert notice.subject == "Calendar “Old” stopped syncing"
    with time_machine.travel(MARCH + timedelta(minutes=2), tick=False):
        assert tasks.sync_due() == {"queued": 0, "stop_notices": 0}
    assert len(mailoutbox) == 1


def test_beat_runs_the_sync_and_the_interval_comes_from_the_environment() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["sync-calendars"]["task"] == "calendars.tasks.sync_due"
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CALENDAR_SYNC_MINUTES)",
        env={**example_env(), "CALENDAR_SYNC_MINUTES": "3"},
    )
    assert result.stdout.strip().splitlines()[-1] == "3", result.stderr


def test_a_sources_address_and_password_never_reach_the_logs(
    evenings: Tutor,
    feeds_server: FeedServer,
    calendar_settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar_settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 0.5
    caplog.set_level(logging.INFO)  # production logs at INFO (LOG_LEVEL)
    secret_path = "/calendar/ical/ada%40gmail.com/private-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    password = "app-password-9876"
    now = MARCH
    for answer in (
        {"body": feeds.google()},
        {"body": b"<html></html>"},
        {"body": b"", "status": 404},
        {"hang": True},
    ):
        feeds_server.serve(f"{secret_path}/basic.ics", **answer)
        source = add_source(
            evenings,
            feeds_server.url(f"{secret_path}/basic.ics"),
            now,
            username="ada",
            password=password,
        )
        sync(source, now)
    refused = add_source(evenings, f"http://10.0.0.1{secret_path}/basic.ics", now)
    calendar_settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    sync(refused, now)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "calendar source" in logged
    for secret in ("private-0a1b2c3d4e5f", password, "ada%40gmail.com"):
        assert secret not in logged
        assert all(secret not in (r.exc_text or "") for r in caplog.records)
    errors = CalendarSource.objects.values_list("last_error", flat=True)
    assert all("private-0a1b2c3d4e5f" not in e for e in errors)


def test_a_tutor_connects_at_most_twenty_calendars(evenings: Tutor) -> None:
    for n in range(services.MAX_SOURCES_PER_TUTOR):
        add_source(evenings, f"https://calendar.example.com/{n}.ics", MARCH, name=f"C{n}")
    with pytest.raises(ApplicationError, match="at most 20 calendars"):
        add_source(evenings, "https://calendar.example.com/x.ics", MARCH)


def test_our_own_feed_subscribed_as_a_source_blocks_nothing(
    evenings: Tutor, feeds_server: FeedServer, client: Any
) -> None:
    # The tutor pastes the feed of their sessions (the settings page's link) into
    # "Connect a calendar": every event in it is one of ours.
    sessions = [
        confirm(slot_at(evenings, local(2026, 3, 3, 18)), MARCH),
        confirm(slot_at(evenings, local(2026, 3, 5, 20)), MARCH),
    ]
    with time_machine.travel(MARCH, tick=False):
        feed = client.get(f"/calendar/{evenings.feed_token}.ics")
    assert feed.status_code == 200
    assert feed.content.count(b"BEGIN:VEVENT") == 2
    source = add_source(evenings, feeds_server.serve("/ours.ics", feed.content), MARCH)
    result = sync(source, MARCH)
    assert (result.outcome, result.busy) == ("unchanged", 0)  # read fine; no busy time
    assert busy_of(source) == []
    assert not Notification.objects.filter(kind=NotificationKind.BUSY_CONFLICT).exists()
    assert all(b.status == BookingStatus.CONFIRMED for b in sessions)
