"""The simulated checkout: the form's time and price format, the hold and its end."""

from datetime import timedelta

import pytest

from payments.models import Payment

from .conftest import hold_slot

pytestmark = pytest.mark.django_db


def checkout(client, booking) -> str:
    payment = Payment.objects.get(booking=booking)
    response = client.get(f"/payments/simulated/{payment.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_checkout_shows_the_time_in_the_students_zone_like_the_form(client, frozen, slot, now):
    form = client.get(f"/t/ada/book/?slot={slot.pk}&tz=Asia/Kolkata").content.decode()
    booking = hold_slot(slot, now=now)
    booking.student_timezone = "Asia/Kolkata"
    booking.save()
    html = checkout(client, booking)
    # The same words, from the same template (bookings/_when.html), in the same zone.
    when = "Friday, December 4, 2026 at 8:30 PM</time> – "
    assert when in form and when in html
    assert "(<span data-zone-label>Asia/Kolkata</span>)" in html
    assert " UTC</time>" not in html


def test_the_checkout_shows_the_price_as_the_form_does(client, frozen, slot, now):
    html = checkout(client, hold_slot(slot, now=now))
    assert "<strong data-amount>$90.00</strong>" in html
    assert ">Pay $90.00</button>" in html
    assert "minor units" not in html


def test_the_checkout_says_until_when_the_time_is_held(client, frozen, slot, now):
    booking = hold_slot(slot, now=now)  # held for 30 minutes: until 10:30 in New York
    html = checkout(client, booking)
    assert "Held for you until" in html
    assert "10:30 AM</time>" in html
    assert f'data-expires="{booking.hold_expires_at:%Y-%m-%dT%H:%M:%S}' in html
    assert "data-hold-expired hidden" in html


def test_a_checkout_past_its_hold_says_so_and_links_back_to_the_times(client, frozen, slot, now):
    booking = hold_slot(slot, now=now)
    frozen.shift(timedelta(minutes=31))
    html = checkout(client, booking)
    assert "Your hold has expired" in html
    assert "data-hold-running hidden" in html
    assert 'href="/t/ada/?tz=America/New_York"' in html
    assert "data-hold-hide hidden" in html  # no Pay button for a time given back


def test_the_form_says_how_long_the_time_will_be_held(client, frozen, slot, settings):
    settings.BOOKING_HOLD_MINUTES = 20
    html = client.get(f"/t/ada/book/?slot={slot.pk}").content.decode()
    assert "we hold this time for you for 20 minutes while you pay" in html


def test_the_pending_page_counts_down_the_same_hold(client, frozen, slot, now):
    booking = hold_slot(slot, now=now)
    html = client.get(booking.manage_path).content.decode()
    assert "Held for you until" in html and "data-hold-left" in html
