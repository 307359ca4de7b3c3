"""The tutor's side: packages on /tutor/packages/ and in the admin, purchases with their
balances; another tutor sees none of it and cannot spend on it."""

from datetime import timedelta

import pytest
from django.test import Client

from packages import services
from packages.models import Package
from tests.conftest import add_offerings, make_slot
from tests.security.test_admin import staff

from .conftest import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(make_tutor):
    tutor = make_tutor(slug="bo", display_name="Bo Other", email="bo@example.com")
    add_offerings(tutor)
    return tutor


def signed_in(tutor) -> Client:
    client = Client()
    client.force_login(tutor.user)
    return client


def test_a_tutor_adds_a_package_on_their_page(tutor, remote, frozen):
    client = signed_in(tutor)
    response = client.post(
        "/tutor/packages/",
        {
            "offering": remote.pk,
            "sessions": 5,
            "price": "400",
            "valid_days": 183,
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content
    package = Package.objects.get()
    assert (package.tutor, package.sessions, package.price_amount, package.currency) == (
        tutor,
        5,
        40000,
        "usd",
    )
    page = client.get("/tutor/packages/")
    assert "5 × Python (video)" in page.content.decode()


def test_a_tutor_cannot_sell_another_tutors_session_type(tutor, other, frozen):
    response = signed_in(tutor).post(
        "/tutor/packages/",
        {"offering": other.offerings.first().pk, "sessions": 5, "price": "400", "valid_days": 30},
    )
    assert response.status_code == 200
    assert not Package.objects.exists()


def test_the_tutor_sees_purchases_with_their_balances(tutor, now, frozen, package, slots):
    purchase = buy(package, now)
    services.purchase_book(purchase_id=purchase.pk, slot_id=slots[0].pk, now=now)
    client = signed_in(tutor)
    page = client.get("/tutor/packages/").content.decode()
    assert "Sam Student" in page
    assert "4 of 5" in page
    detail = client.get(f"/tutor/packages/purchases/{purchase.pk}/").content.decode()
    assert "Booked a session" in detail
    assert purchase.token not in page + detail  # the link is the student's


def test_another_tutor_sees_no_package_or_purchase(other, now, frozen, package):
    purchase = buy(package, now)
    client = signed_in(other)
    page = client.get("/tutor/packages/").content.decode()
    assert "Sam Student" not in page
    assert "5 × Python (video)" not in page
    assert client.get(f"/tutor/packages/{package.pk}/").status_code == 404
    assert client.get(f"/tutor/packages/purchases/{purchase.pk}/").status_code == 404


def test_a_credit_cannot_book_another_tutors_slot(api, other, now, frozen, bought):
    theirs = make_slot(other, now + timedelta(days=2), remote=other.offerings.get(mode="remote"))
    response = api.post(
        f"/api/packages/{bought.token}/bookings/", {"slot": theirs.pk}, format="json"
    )
    assert response.status_code == 400
    assert not theirs.bookings.exists()
    assert bought.entries.count() == 1


def test_the_admin_shows_a_tutor_only_their_own_packages(tutor, other, now, package):
    purchase = buy(package, now)
    mine, theirs = staff(tutor), staff(other)
    assert mine.get(f"/admin/packages/package/{package.pk}/change/").status_code == 200
    assert mine.get(f"/admin/packages/purchase/{purchase.pk}/change/").status_code == 200
    assert theirs.get("/admin/packages/package/").status_code == 200
    assert "Python (video)" not in theirs.get("/admin/packages/package/").content.decode()
    assert "Sam Student" not in theirs.get("/admin/packages/purchase/").content.decode()
    assert theirs.get(f"/admin/packages/package/{package.pk}/change/").status_code == 302
    assert theirs.get(f"/admin/packages/purchase/{purchase.pk}/change/").status_code == 302
    entry = purchase.entries.get()
    assert theirs.get(f"/admin/packages/entry/{entry.pk}/change/").status_code == 302
    page = mine.get(f"/admin/packages/purchase/{purchase.pk}/change/").content.decode()
    assert purchase.link_key not in page
    assert purchase.token not in page


def test_the_admin_offers_a_tutor_only_their_own_session_types(tutor, other, remote):
    client = staff(tutor)
    theirs = other.offerings.get(mode="remote")
    response = client.post(
        "/admin/packages/package/add/",
        {"offering": theirs.pk, "sessions": 5, "price_amount": 40000, "valid_days": 30},
    )
    assert response.status_code == 200
    assert not Package.objects.exists()
    response = client.post(
        "/admin/packages/package/add/",
        {"offering": remote.pk, "sessions": 5, "price_amount": 40000, "valid_days": 30},
    )
    assert response.status_code == 302
    assert Package.objects.get().tutor == tutor
