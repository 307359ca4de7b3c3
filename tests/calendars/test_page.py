"""The tutor's calendars page: sources with their last success, last error in plain
words and busy-time counts; sync now, pause, remove; sessions a busy time now covers."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from bookings.models import BusyInterval, Offering, Tutor
from calendars import crypto
from calendars.models import CalendarSource

from . import feeds
from .conftest import FeedServer, add_source, confirm, evening_rule, slot_at, sync

SECRET_URL = (
    "https://calendar.google.com/calendar/ical/ada%40gmail.com/private-0a1b2c3d4e/basic.ics"
)


@pytest.fixture
def signed_in(tutor: Tutor) -> Client:
    client = Client()
    client.force_login(tutor.user)
    return client


def page(client: Client) -> str:
    response = client.get("/tutor/calendars/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_dashboard_links_to_the_page(signed_in: Client) -> None:
    assert 'href="/tutor/calendars/"' in signed_in.get("/tutor/").content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.get("/tutor/calendars/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_tutor_connects_a_calendar_and_its_address_is_never_shown(
    signed_in: Client, tutor: Tutor
) -> None:
    response = signed_in.post(
        "/tutor/calendars/", {"name": "Personal", "kind": "ics", "url": SECRET_URL}
    )
    assert response.status_code == 302
    html = page(signed_in)
    assert "Personal" in html
    assert "calendar.google.com" in html
    assert "private-0a1b2c3d4e" not in html
    assert "not synced yet" in html
    assert CalendarSource.objects.get().tutor == tutor


def test_a_bad_address_is_explained_next_to_its_field(signed_in: Client) -> None:
    response = signed_in.post(
        "/tutor/calendars/", {"name": "Personal", "kind": "ics", "url": "ftp://example.com/x.ics"}
    )
    assert response.status_code == 400
    assert "Use an address starting with https://" in response.content.decode()
    assert not CalendarSource.objects.exists()


def test_the_page_shows_each_sources_state_in_plain_words(
    signed_in: Client, tutor: Tutor, feeds_server: FeedServer
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    good = add_source(tutor, feeds_server.serve("/g.ics", feeds.google()), now, name="Google")
    broken = add_source(tutor, feeds_server.url("/gone.ics", host="localhost"), now, name="Old")
    html_feed = add_source(tutor, feeds_server.serve("/h.ics", "<html></html>"), now, name="Page")
    for source in (good, broken, html_feed):
        sync(source, now)
    html = page(signed_in)
    assert "7 busy times" in html
    assert "404 from localhost" in html
    assert "not a calendar" in html
    assert "Its last good busy times still count." in html
    assert html.count("Sync now") == 3


def test_sync_now_pause_and_remove(
    signed_in: Client,
    tutor: Tutor,
    feeds_server: FeedServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    source = add_source(tutor, feeds_server.serve("/g.ics", feeds.google()), now)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/tutor/calendars/{source.pk}/sync/")
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.last_success_at is not None

    signed_in.post(f"/tutor/calendars/{source.pk}/pause/")
    source.refresh_from_db()
    assert not source.is_active
    assert "Resume" in page(signed_in)

    BusyInterval.objects.create(
        tutor=tutor, source=source.pk, start=now, end=now + timedelta(hours=1)
    )
    signed_in.post(f"/tutor/calendars/{source.pk}/delete/")
    assert not CalendarSource.objects.exists()
    assert not BusyInterval.objects.exists()


def test_another_tutors_calendar_answers_404(
    signed_in: Client, make_tutor: Any, feeds_server: FeedServer
) -> None:
    other = make_tutor()
    theirs = add_source(other, feeds_server.url("/x.ics"), datetime(2026, 3, 1, tzinfo=UTC))
    for action in ("sync", "pause", "delete"):
        assert signed_in.post(f"/tutor/calendars/{theirs.pk}/{action}/").status_code == 404
    assert signed_in.get(f"/tutor/calendars/{theirs.pk}/sync/").status_code == 405
    assert "x.ics" not in page(signed_in)
    assert CalendarSource.objects.filter(pk=theirs.pk, is_active=True).exists()


def test_sessions_under_a_busy_time_are_listed_with_a_way_to_act(
    signed_in: Client,
    tutor: Tutor,
    offerings: tuple[Offering, Offering],
    feeds_server: FeedServer,
    frozen: Any,
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    frozen.move_to(now)
    evening_rule(tutor, offerings, now)
    start = datetime(2026, 3, 3, 23, tzinfo=UTC)  # Tue 18:00 New York
    booking = confirm(slot_at(tutor, start), now)
    sync(add_source(tutor, feeds_server.serve("/g.ics", feeds.google()), now), now)
    html = page(signed_in)
    assert "Busy during 1 booked session" in html
    assert f"/tutor/bookings/{booking.pk}/" in html
    assert "Sam Student" in html


def test_a_tutor_fixes_a_calendars_address_and_password_without_seeing_them(
    signed_in: Client,
    tutor: Tutor,
    feeds_server: FeedServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    source = add_source(tutor, SECRET_URL, now, username="ada", password="old-password")
    form = signed_in.get(f"/tutor/calendars/{source.pk}/")
    assert form.status_code == 200
    html = form.content.decode()
    for secret in ("private-0a1b2c3d4e", "old-password", 'value="ada"'):
        assert secret not in html
    new_url = feeds_server.serve("/fixed.ics", feeds.google())
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            f"/tutor/calendars/{source.pk}/",
            {"name": "Personal", "url": new_url, "username": "", "password": "new-password"},
        )
    assert response.status_code == 302
    stored = crypto.decrypt(CalendarSource.objects.get(pk=source.pk).secret)
    # Blank fields keep what is stored; the new address is synced at once.
    assert (stored["url"], stored["username"], stored["password"]) == (
        new_url,
        "ada",
        "new-password",
    )
    synced = CalendarSource.objects.get(pk=source.pk)
    assert (synced.host, synced.last_error) == ("127.0.0.1", "")
    assert synced.last_success_at is not None  # (the task reads the real clock)
    assert [path for path, _ in feeds_server.requests] == ["/fixed.ics"]


def test_a_tutor_can_make_a_calendar_forget_its_credentials(
    signed_in: Client, tutor: Tutor
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    source = add_source(tutor, SECRET_URL, now, username="ada", password="pw")
    signed_in.post(
        f"/tutor/calendars/{source.pk}/", {"name": "Renamed", "forget_credentials": "on"}
    )
    stored = CalendarSource.objects.get(pk=source.pk)
    secret = crypto.decrypt(stored.secret)
    assert (stored.name, secret["url"], secret["username"], secret["password"]) == (
        "Renamed",
        SECRET_URL,
        "",
        "",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://calendar.example.com/a\x0bb.ics", "control character"),
        ("https://calendar.example.com:25/a.ics", "Port 25 is not a web port"),
        ("https://calendar.example.com/" + "a" * 2001, "at most 2000 characters"),
    ],
)
def test_a_bad_new_address_is_explained_and_changes_nothing(
    signed_in: Client, tutor: Tutor, url: str, message: str
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    source = add_source(tutor, SECRET_URL, now)
    response = signed_in.post(f"/tutor/calendars/{source.pk}/", {"name": "Personal", "url": url})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert crypto.decrypt(CalendarSource.objects.get(pk=source.pk).secret)["url"] == SECRET_URL


def test_another_tutors_calendar_cannot_be_edited(signed_in: Client, make_tutor: Any) -> None:
    theirs = add_source(make_tutor(), SECRET_URL, datetime(2026, 3, 1, tzinfo=UTC))
    assert signed_in.get(f"/tutor/calendars/{theirs.pk}/").status_code == 404
    response = signed_in.post(
        f"/tutor/calendars/{theirs.pk}/", {"name": "Mine", "url": "https://evil.example/a.ics"}
    )
    assert response.status_code == 404
    stored = CalendarSource.objects.get(pk=theirs.pk)
    assert (stored.name, crypto.decrypt(stored.secret)["url"]) == ("Personal", SECRET_URL)


def test_the_dashboard_warns_about_sessions_under_a_busy_time(
    signed_in: Client,
    tutor: Tutor,
    offerings: tuple[Offering, Offering],
    feeds_server: FeedServer,
    frozen: Any,
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    frozen.move_to(now)
    evening_rule(tutor, offerings, now)
    assert "data-conflicts" not in signed_in.get("/tutor/").content.decode()
    booking = confirm(slot_at(tutor, datetime(2026, 3, 3, 23, tzinfo=UTC)), now)
    sync(add_source(tutor, feeds_server.serve("/g.ics", feeds.google()), now), now)
    html = signed_in.get("/tutor/").content.decode()
    assert "Your calendar shows you busy during 1 booked session" in html
    assert f'href="/tutor/bookings/{booking.pk}/"' in html
    assert 'href="/tutor/calendars/"' in html
