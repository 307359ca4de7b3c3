"""In person: the meeting place, its map, and its New York time for students elsewhere.

The slot fixture is Friday 4 December 2026, 15:00 UTC: 10:00 AM in New York."""

import pytest

from payments.models import Payment

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db

NEW_YORK_TIME = 'data-tz="America/New_York">10:00 AM</time>–<time'


def test_the_form_gives_the_place_its_map_and_its_new_york_time(client, frozen, slot):
    html = client.get(f"/t/ada/book/?slot={slot.pk}&tz=Europe/Berlin").content.decode()
    assert "In person, you meet at" in html and "Bryant Park Cafe" in html
    assert 'href="https://www.openstreetmap.org/search?query=40+W+40th+St' in html
    assert NEW_YORK_TIME in html
    assert "New York time (Friday, December 4)" in html


def test_a_student_in_new_york_is_not_told_the_same_time_twice(client, frozen, slot):
    html = client.get(f"/t/ada/book/?slot={slot.pk}&tz=America/New_York").content.decode()
    assert "Bryant Park Cafe" in html
    assert "data-place-time" not in html


def test_a_remote_choice_shows_no_meeting_place(client, frozen, slot):
    html = client.get(f"/t/ada/book/?slot={slot.pk}&mode=remote&tz=Asia/Kolkata").content.decode()
    assert "In person, you meet at" not in html


def test_checkout_and_confirmation_show_the_place_with_its_new_york_time(client, frozen, slot, now):
    booking = hold_slot(slot, mode="in_person", now=now)
    booking.student_timezone = "Asia/Kolkata"
    booking.save()
    payment = Payment.objects.get(booking=booking)
    html = client.get(f"/payments/simulated/{payment.pk}/").content.decode()
    assert NEW_YORK_TIME in html and "openstreetmap.org/search" in html
    confirm(booking, now=now)
    html = client.get(booking.manage_path).content.decode()
    assert NEW_YORK_TIME in html
    # Kolkata is 10½ hours ahead: the session is on Friday evening there.
    assert "Friday, December 4, 2026 at 8:30 PM" in html
