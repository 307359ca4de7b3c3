"""The student's package page behind its link: balance, history, open slots, book."""

import pytest
from django.test import Client

from bookings.models import Booking, BookingStatus
from packages.selectors import balance

pytestmark = pytest.mark.django_db


def test_the_page_shows_balance_history_and_the_slots_a_credit_can_book(frozen, bought, slots):
    page = Client().get(bought.path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<strong>5</strong> credits left" in html
    assert "Bought" in html
    for slot in slots:
        assert f'value="{slot.pk}"' in html


def test_booking_on_the_page_spends_a_credit_and_leads_to_the_booking(frozen, now, bought, slots):
    response = Client().post(bought.path, {"slot": slots[1].pk})
    booking = Booking.objects.get()
    assert response["Location"] == booking.manage_path
    assert booking.status == BookingStatus.CONFIRMED
    assert balance(bought, now=now) == 4


def test_a_forged_link_is_a_404(frozen, bought):
    assert Client().get(f"/p/{bought.link_key}x/").status_code == 404


def test_the_package_link_is_scrubbed_from_logs(bought):
    from config.observability import redact

    assert bought.token not in redact(f"GET {bought.path} 200")
    assert bought.token not in redact(f"GET {bought.api_path} 200")


def test_the_tutors_page_advertises_packages_and_a_cached_copy_is_not_reused(
    frozen, tutor, remote, slots
):
    from packages import services

    client = Client()
    first = client.get(f"/t/{tutor.slug}/")
    assert first.status_code == 200
    assert "Buy a package" not in first.content.decode()
    etag = first["ETag"]
    assert client.get(f"/t/{tutor.slug}/", HTTP_IF_NONE_MATCH=etag).status_code == 304

    package = services.package_create(
        tutor=tutor, offering=remote, sessions=5, price_amount=40000, valid_days=180
    )
    again = client.get(f"/t/{tutor.slug}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    html = again.content.decode()
    assert f"5 × {remote.title} for $400.00" in html
    assert f'href="/t/{tutor.slug}/packages/"' in html

    services.package_update(package=package, active=False)
    gone = client.get(f"/t/{tutor.slug}/", HTTP_IF_NONE_MATCH=again["ETag"])
    assert gone.status_code == 200
    assert "Buy a package" not in gone.content.decode()
