"""Without a Stripe key (development only) a local page stands in for Stripe Checkout."""

import pytest

from bookings.models import Booking, BookingStatus
from payments.models import Payment, PaymentStatus, Provider, Refund
from tests.conftest import hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulated(api, frozen, slot) -> Booking:
    response = hold(api, slot)
    assert response.status_code == 201
    assert response.json()["payment_url"].startswith("http://testserver/payments/simulated/")
    return Booking.objects.get()


def page(booking: Booking) -> str:
    return f"/payments/simulated/{Payment.objects.get(booking=booking).pk}/"


def test_the_simulated_page_shows_what_is_being_paid(client, simulated):
    response = client.get(page(simulated))
    assert response.status_code == 200
    assert b"Simulated checkout" in response.content
    assert b"$90.00" in response.content  # as the booking form writes it
    assert Payment.objects.get().provider == Provider.SIMULATED


def test_paying_on_the_simulated_page_confirms_the_booking(client, simulated):
    response = client.post(page(simulated), {"action": "pay"})
    assert response.status_code == 302
    assert response["Location"] == simulated.manage_path
    simulated.refresh_from_db()
    assert simulated.status == BookingStatus.CONFIRMED
    assert Payment.objects.get().status == PaymentStatus.PAID


def test_cancelling_on_the_simulated_page_releases_the_slot(client, simulated):
    client.post(page(simulated), {"action": "cancel"})
    simulated.refresh_from_db()
    assert simulated.status == BookingStatus.CANCELLED


def test_a_simulated_refund_needs_no_stripe(api, client, simulated):
    client.post(page(simulated), {"action": "pay"})
    response = api.post(f"/api/bookings/{simulated.manage_token}/cancel/")
    assert response.json()["refund"]["amount"] == 9000
    assert Refund.objects.get().status == "succeeded"


def test_the_simulated_page_is_gone_once_stripe_is_configured(client, simulated, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    assert client.get(page(simulated)).status_code == 404
    assert client.post(page(simulated), {"action": "pay"}).status_code == 404
    simulated.refresh_from_db()
    assert simulated.status == BookingStatus.PENDING_PAYMENT


def test_the_simulated_page_is_gone_outside_development(client, simulated, settings):
    settings.PAYMENTS_SIMULATED = False
    assert client.post(page(simulated), {"action": "pay"}).status_code == 404
    simulated.refresh_from_db()
    assert simulated.status == BookingStatus.PENDING_PAYMENT


def test_without_stripe_or_simulation_a_hold_is_a_503_and_nothing_is_kept(
    api, frozen, slot, settings
):
    settings.PAYMENTS_SIMULATED = False
    response = hold(api, slot)
    assert response.status_code == 503
    assert response.json()["code"] == "payment_unavailable"
    # Refused inside the hold's own transaction: no booking row at all.
    assert not Booking.objects.exists()
    assert not Payment.objects.exists()
