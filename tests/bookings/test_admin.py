"""The Django admin, as a tutor (staff, not superuser) uses it: their own rows only."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from bookings import services
from bookings.models import Tutor
from tests.bookings.test_materialise import book
from tests.conftest import add_offerings, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(tutor: Tutor) -> Client:
    tutor.user.is_staff = True
    tutor.user.save()
    tutor.user.groups.add(services.tutor_group())
    client = Client()
    client.force_login(tutor.user)
    return client


def test_a_tutor_sees_their_own_bookings_in_the_admin_and_not_others(
    staff_client, tutor, remote, make_tutor, now
):
    mine = book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    other = make_tutor(slug="bo")
    other_remote, _ = add_offerings(other)
    theirs = book(make_slot(other, now + timedelta(days=2), remote=other_remote))
    page = staff_client.get("/admin/bookings/booking/")
    assert page.status_code == 200
    assert str(mine.pk) in page.content.decode()
    assert str(theirs.pk) not in page.content.decode()
    assert staff_client.get(f"/admin/bookings/booking/{theirs.pk}/change/").status_code in (
        302,
        404,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/bookings/offering/",
        "/admin/bookings/availabilityrule/",
        "/admin/bookings/blockedperiod/",
        "/admin/bookings/slot/",
        "/admin/bookings/booking/",
        "/admin/bookings/notification/",
        "/admin/payments/payment/",
        "/admin/payments/refund/",
        "/admin/bookings/offering/add/",
        "/admin/bookings/availabilityrule/add/",
        "/admin/bookings/blockedperiod/add/",
    ],
)
def test_every_tutor_facing_model_opens_in_the_admin(staff_client, path):
    assert staff_client.get(path).status_code == 200


def test_stripe_events_are_for_superusers_only(staff_client):
    assert staff_client.get("/admin/payments/stripeevent/").status_code == 403


def test_the_demo_tutor_can_use_the_admin(db):
    call_command("seed_demo")
    client = Client()
    assert client.login(username="demo-tutor", password="demo-tutor-password")
    assert client.get("/admin/bookings/booking/").status_code == 200
    assert client.get("/admin/bookings/availabilityrule/add/").status_code == 200
