"""The tutor's sign-in, dashboard and a booking's page with cancel / completed / no-show."""

from datetime import timedelta

import pytest
from django.test import Client

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
    assert "Cancel and refund $90" in html
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
    assert b"Cancelled; $90 refunded to the student." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CANCELLED
    assert booked.refund_amount == 9000
    assert Refund.objects.get().amount == 9000
    assert booked.events.last().reason == "ill"


@pytest.mark.parametrize(
    ("action", "status"),
    [("completed", BookingStatus.COMPLETED), ("no_show", BookingStatus.NO_SHOW)],
)
def test_the_tutor_records_the_outcome_once_it_started(
    tutor_client, booked, frozen, action, status
):
    url = f"/tutor/bookings/{booked.pk}/"
    response = tutor_client.post(url, {"action": action}, follow=True)
    assert b"The session has not started yet." in response.content
    frozen.shift(timedelta(days=2, minutes=30))
    assert b"Mark completed" in tutor_client.get(url).content
    tutor_client.post(url, {"action": action})
    booked.refresh_from_db()
    assert booked.status == status
