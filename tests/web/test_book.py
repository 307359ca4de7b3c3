"""The booking form: one slot, mode, name, email, note; then straight to the checkout."""

from datetime import timedelta

import pytest

from bookings.models import Booking, BookingStatus
from payments.models import Payment
from tests.conftest import hold, make_slot

pytestmark = pytest.mark.django_db


def form(slot, **changes):
    data = {
        "slot": slot.pk,
        "mode": "remote",
        "student_name": "Sam Student",
        "student_email": "Sam@Example.com",
        "notes": "Decorators, please",
        "student_timezone": "Europe/Paris",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_form_shows_the_slot_in_the_visitors_zone_and_its_modes(client, frozen, slot):
    response = client.get(f"/t/ada/book/?slot={slot.pk}&tz=Asia/Tokyo")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Saturday, December 5, 2026 at 12:00 AM" in html
    assert "(<span data-zone-label>Asia/Tokyo</span>)" in html
    assert 'value="remote"' in html and "Remote (video) · $90.00" in html
    assert "In person (NYC) · $120.00 · meet at Bryant Park Cafe" in html
    assert f'name="slot" value="{slot.pk}"' in html
    assert 'name="student_timezone" value="Asia/Tokyo"' in html
    for label in ("Your name", "Email", "What do you want to work on? (optional)"):
        assert f">{label}</label>" in html


def test_a_slot_with_one_mode_has_it_chosen_already(client, frozen, tutor, remote, now):
    slot = make_slot(tutor, now + timedelta(days=2), remote=remote)
    html = client.get(f"/t/ada/book/?slot={slot.pk}").content.decode()
    assert 'value="remote" required id="id_mode_0" checked' in html
    assert 'value="in_person"' not in html


def test_without_a_slot_the_form_sends_the_student_back_to_the_times(client, frozen, tutor):
    for query in ("", "?slot=abc", "?slot=0"):
        response = client.get(f"/t/ada/book/{query}")
        assert response.status_code == 302
        assert response["Location"] == "/t/ada/"


def test_booking_holds_the_slot_and_redirects_to_the_checkout(client, frozen, slot):
    response = client.post("/t/ada/book/", form(slot))
    booking = Booking.objects.get()
    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"http://testserver/payments/simulated/{payment.pk}/"
    assert booking.status == BookingStatus.PENDING_PAYMENT
    assert booking.slot == slot and booking.mode == "remote"
    assert booking.student_email == "sam@example.com"
    assert booking.student_timezone == "Europe/Paris"
    assert booking.notes == "Decorators, please"


def test_an_in_person_booking_keeps_its_mode(client, frozen, slot):
    client.post("/t/ada/book/", form(slot, mode="in_person"))
    booking = Booking.objects.get()
    assert booking.mode == "in_person" and booking.price_amount == 12000


def test_missing_fields_are_named_in_place(client, frozen, slot):
    response = client.post(
        "/t/ada/book/", form(slot, mode=None, student_name="", student_email="not-an-email")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please check the form" in html
    assert "Choose remote or in person." in html
    assert "Tell us your name." in html
    assert "That does not look like an email address" in html
    assert 'aria-invalid="true"' in html
    assert 'value="Sam Student"' not in html
    assert "Decorators, please" in html  # what was typed stays
    assert not Booking.objects.exists()


def test_a_bad_time_zone_is_dropped_not_refused(client, frozen, slot):
    client.post("/t/ada/book/", form(slot, student_timezone="Nowhere/Land"))
    assert Booking.objects.get().student_timezone == ""


def test_a_slot_taken_meanwhile_shows_just_taken_with_fresh_times(
    client, api, frozen, tutor, remote, in_person, now
):
    taken = make_slot(tutor, now + timedelta(days=2), remote=remote, in_person=in_person)
    other = make_slot(tutor, now + timedelta(days=3), remote=remote, in_person=in_person)
    assert hold(api, taken, email="kim@example.com").status_code == 201

    response = client.post("/t/ada/book/", form(taken))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sorry, that time was just taken" in html
    assert "Nothing was charged." in html
    assert f'name="slot" value="{other.pk}"' in html
    assert f'name="slot" value="{taken.pk}"' not in html
    assert 'value="Sam Student"' in html  # the student's details are kept
    assert Booking.objects.count() == 1

    response = client.post("/t/ada/book/", form(other))
    assert response.status_code == 302
    assert Booking.objects.filter(slot=other, status=BookingStatus.PENDING_PAYMENT).exists()


def test_opening_a_stale_slot_link_offers_other_times(
    client, api, frozen, slot, tutor, remote, now
):
    other = make_slot(tutor, now + timedelta(days=3), remote=remote)
    assert hold(api, slot, email="kim@example.com").status_code == 201
    html = client.get(f"/t/ada/book/?slot={slot.pk}&mode=remote").content.decode()
    assert "Sorry, that time was just taken" in html
    assert f'name="slot" value="{other.pk}"' in html


def test_submitting_the_just_taken_form_without_a_time_asks_for_one(client, api, frozen, slot):
    assert hold(api, slot, email="kim@example.com").status_code == 201
    data = form(slot)
    del data["slot"]  # no radio picked
    html = client.post("/t/ada/book/", data).content.decode()
    assert "Pick a time." in html
    assert 'value="Sam Student"' in html


def test_too_many_unpaid_holds_are_explained(client, frozen, tutor, remote, now):
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (2, 3, 4)]
    for s in slots[:2]:
        assert client.post("/t/ada/book/", form(s)).status_code == 302
    response = client.post("/t/ada/book/", form(slots[2]))
    assert response.status_code == 200
    assert b"You already hold 2 unpaid slots." in response.content
    assert Booking.objects.count() == 2


def test_another_tutors_slot_cannot_be_booked_through_this_page(
    client, frozen, tutor, make_tutor, now
):
    from tests.conftest import add_offerings

    bo = make_tutor(slug="bo")
    remote, _ = add_offerings(bo)
    theirs = make_slot(bo, now + timedelta(days=2), remote=remote)
    response = client.get(f"/t/ada/book/?slot={theirs.pk}")
    assert b"Sorry, that time was just taken" in response.content
