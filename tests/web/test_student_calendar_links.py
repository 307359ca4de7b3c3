"""Google Calendar and Outlook.com links beside the .ics: on the confirmation page and in
the confirmation email; UTC times, and never the student's private manage link."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from bookings.calendar_links import booking_calendar_links, calendar_links

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_links_carry_the_event_in_utc():
    links = calendar_links(
        title="Python with Ada & co",
        start=datetime(2026, 12, 3, 15, tzinfo=UTC),
        end=datetime(2026, 12, 3, 16, tzinfo=UTC),
        details="Video session. Join: https://meet.example.com/room?x=1",
        location="https://meet.example.com/room?x=1",
    )
    google = query(links.google)
    assert links.google.startswith("https://calendar.google.com/calendar/render?")
    assert google["action"] == ["TEMPLATE"]
    assert google["dates"] == ["20261203T150000Z/20261203T160000Z"]
    assert google["text"] == ["Python with Ada & co"]
    assert google["location"] == ["https://meet.example.com/room?x=1"]
    outlook = query(links.outlook)
    assert links.outlook.startswith("https://outlook.live.com/calendar/0/deeplink/compose?")
    assert outlook["startdt"] == ["2026-12-03T15:00:00Z"]
    assert outlook["enddt"] == ["2026-12-03T16:00:00Z"]
    assert outlook["subject"] == ["Python with Ada & co"]
    assert outlook["rru"] == ["addevent"]


def test_a_paid_remote_session_links_its_video_call_and_no_manage_link(frozen, slot, now):
    booking = confirm(hold_slot(slot, now=now), now=now)
    links = booking_calendar_links(booking)
    for url in (links.google, links.outlook):
        assert booking.manage_token not in url
        assert "/bookings/" not in url
    assert query(links.google)["location"] == ["https://meet.example.com/room"]
    assert query(links.google)["dates"] == ["20261204T150000Z/20261204T160000Z"]


def test_an_unpaid_hold_leaves_the_video_link_out(frozen, slot, now):
    links = booking_calendar_links(hold_slot(slot, now=now))
    assert "meet.example.com" not in links.google + links.outlook


def test_an_in_person_session_links_its_place_and_map(frozen, slot, now):
    booking = confirm(hold_slot(slot, mode="in_person", now=now), now=now)
    google = query(booking_calendar_links(booking).google)
    assert google["location"] == ["Bryant Park Cafe, 40 W 40th St, New York, NY 10018"]
    assert "https://www.openstreetmap.org/search?query=" in google["details"][0]


def test_the_confirmation_page_shows_them_beside_the_ics(client, frozen, slot, now):
    booking = confirm(hold_slot(slot, now=now), now=now)
    html = client.get(booking.manage_path).content.decode()
    links = booking_calendar_links(booking)
    ics = html.index("Add to calendar (.ics)")
    google = html.index(links.google.replace("&", "&amp;"))
    outlook = html.index(links.outlook.replace("&", "&amp;"))
    assert ics < google < outlook


def test_a_pending_booking_has_no_calendar_links_yet(client, frozen, slot, now):
    html = client.get(hold_slot(slot, now=now).manage_path).content.decode()
    assert "calendar.google.com" not in html and "outlook.live.com" not in html


def test_the_confirmation_email_carries_them_for_the_student_only(
    frozen, slot, now, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        booking = confirm(hold_slot(slot, now=now), now=now)
    links = booking_calendar_links(booking)
    student = next(m for m in mail.outbox if m.to == ["sam@example.com"])
    assert isinstance(student, EmailMultiAlternatives)
    html = str(student.alternatives[0][0])
    assert f"Add it to Google Calendar: {links.google}" in student.body
    assert f"Add it to Outlook.com: {links.outlook}" in student.body
    assert links.google.replace("&", "&amp;") in html
    tutor = next(m for m in mail.outbox if m.to == ["ada@example.com"])
    assert "calendar.google.com" not in tutor.body
