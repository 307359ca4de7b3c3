"""The tutor's sign-in, dashboard and a booking's page with cancel / completed / no-show."""

from datetime import timedelta

import pytest
from django.test import Client

from bookings import services
from bookings.models import BookingStatus
from payments.models import Refund
from tests.conftest import add_offerings, make_slot

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor) -> Client:
    client.force_login(tutor.user)
    return client


@pytest.fixture
def booked(frozen, slot, now):
    return confirm(hold_slot(slot, now=now), now=now)


@pytest.mark.parametrize(
    "path",
    ["/tutor/", "/tutor/availability/", "/tutor/slots/", "/tutor/offerings/"],
)
def test_tutor_pages_send_visitors_to_the_sign_in_page(client, frozen, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_the_sign_in_page_has_labelled_fields_and_goes_to_the_dashboard(client, tutor):
    tutor.user.set_password("tutor-pass")
    tutor.user.save()
    html = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    response = client.post(
        "/accounts/login/",
        {"username": tutor.user.username, "password": "tutor-pass", "next": "/tutor/"},
    )
    assert response.status_code == 302 and response["Location"] == "/tutor/"


def test_a_wrong_password_is_said_in_place(client, tutor):
    response = client.post(
        "/accounts/login/", {"username": tutor.user.username, "password": "nope"}
    )
    assert response.status_code == 200
    assert b"Please enter a correct username and password." in response.content


def test_a_user_without_a_tutor_profile_is_told_so(client, frozen, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="x")
    client.force_login(user)
    response = client.get("/tutor/")
    assert response.status_code == 403
    assert b"This account has no tutor profile" in response.content


def test_the_dashboard_lists_upcoming_sessions_by_day(tutor_client, booked, tutor, remote, now):
    later = make_slot(tutor, now + timedelta(days=6), remote=remote)
    hold_slot(later, email="kim@example.com", now=now)
    html = tutor_client.get("/tutor/").content.decode()
    assert "Friday, December 4" in html and "Tuesday, December 8" in html
    assert html.index("Friday, December 4") < html.index("Tuesday, December 8")
    assert "Sam Student" in html
    assert "Awaiting payment" in html
    assert f'href="/tutor/bookings/{booked.pk}/"' in html


def test_the_dashboard_asks_about_sessions_that_have_happened(tutor_client, booked, frozen):
    frozen.shift(timedelta(days=2, hours=2))
    html = tutor_client.get("/tutor/").content.decode()
    assert "How did these go?" in html


def test_a_booking_page_shows_the_student_and_note(tutor_client, booked):
    html = tutor_client.get(f"/tutor/bookings/{booked.pk}/").content.decode()
    assert "Sam Student" in html
    assert 'href="mailto:sam@example.com"' in html
    assert "Decorators, please" in html
    assert "Cancel and refund $90.00" in html
    assert "Mark completed" not in html  # not started yet


def test_another_tutors_booking_is_a_404(client, booked, make_tutor):
    other = make_tutor(slug="bo")
    add_offerings(other)
    client.force_login(other.user)
    assert client.get(f"/tutor/bookings/{booked.pk}/").status_code == 404
    assert client.post(f"/tutor/bookings/{booked.pk}/", {"action": "cancel"}).status_code == 404
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED


def test_the_tutor_cancels_with_a_full_refund(tutor_client, booked, frozen):
    frozen.shift(timedelta(days=1, hours=20))  # inside 24 h: a tutor still refunds in full
    response = tutor_client.post(
        f"/tutor/bookings/{booked.pk}/", {"action": "cancel", "reason": "ill"}, follow=True
    )
    assert b"Cancelled; $90.00 refunded to the student." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CANCELLED
    assert booked.refund_amount == 9000
    assert Refund.objects.get().amount == 9000
    assert booked.events.last().reason == "ill"


def test_the_tutor_marks_a_session_completed_once_it_started(tutor_client, booked, frozen):
    url = f"/tutor/bookings/{booked.pk}/"
    response = tutor_client.post(url, {"action": "completed"}, follow=True)
    assert b"The session has not started yet." in response.content
    frozen.shift(timedelta(days=2, minutes=30))
    html = tutor_client.get(url).content.decode()
    assert "Mark completed" in html
    assert "A no-show can be marked once the session is over" in html
    tutor_client.post(url, {"action": "completed"})
    booked.refresh_from_db()
    assert booked.status == BookingStatus.COMPLETED


def test_a_no_show_waits_for_the_end_of_the_session(tutor_client, booked, frozen):
    url = f"/tutor/bookings/{booked.pk}/"
    frozen.shift(timedelta(days=2, minutes=30))  # started, not over: the student may be late
    response = tutor_client.post(url, {"action": "no_show", "confirm": "yes"}, follow=True)
    assert b"A no-show can be recorded once the session&#x27;s time is over." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED


def test_a_no_show_is_confirmed_first_and_can_be_undone(tutor_client, booked, frozen):
    url = f"/tutor/bookings/{booked.pk}/"
    frozen.shift(timedelta(days=2, hours=1))
    assert b"Mark as a no-show" in tutor_client.get(url).content
    asked = tutor_client.post(url, {"action": "no_show"})  # without the confirmation
    assert asked.status_code == 200
    assert b"Yes, mark as a no-show" in asked.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED

    done = tutor_client.post(url, {"action": "no_show", "confirm": "yes"}, follow=True)
    assert b"Marked as a no-show." in done.content
    assert b"Undo" in done.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.NO_SHOW

    undone = tutor_client.post(url, {"action": "undo"}, follow=True)
    assert b"Outcome taken back: the session is confirmed again." in undone.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED
    assert [e.reason for e in booked.events.order_by("at", "id")][-2:] == [
        "marked no_show",
        "undid no_show",
    ]
    # Undoing twice changes nothing more.
    tutor_client.post(url, {"action": "undo"})
    assert booked.events.count() == 4  # held, paid, marked, undone


def test_an_empty_note_reads_as_no_note(tutor_client, frozen, slot, now):
    booking = services.booking_hold(
        slot_id=slot.pk,
        mode="remote",
        student_name="Kim",
        student_email="kim@example.com",
        notes="",
        now=now,
    ).booking
    html = tutor_client.get(f"/tutor/bookings/{booking.pk}/").content.decode()
    assert "The student left no note." in html
    assert ">None<" not in html
