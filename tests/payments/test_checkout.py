"""Holding a slot opens a Stripe Checkout Session; a broken Stripe leaves nothing behind."""

from datetime import timedelta

import pytest
from django.db import connections

from bookings.models import Booking, BookingStatus
from payments.models import Payment, PaymentStatus
from tests.conftest import hold

from .conftest import use_timeout

pytestmark = pytest.mark.django_db


def open_slot_ids(api) -> list[int]:
    return [s["id"] for s in api.get("/api/slots/", {"tutor": "ada"}).json()["results"]]


def test_holding_a_slot_creates_one_checkout_session_for_the_booking(api, frozen, slot, stripe):
    response = hold(api, slot)
    assert response.status_code == 201
    booking = Booking.objects.get()
    (request,) = stripe.requests_to("POST", "/v1/checkout/sessions")
    p = request.params
    assert p["mode"] == "payment"
    assert p["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "9000",
                "product_data": {
                    "name": "Python (video) with Ada Park",
                    "description": "2026-12-04 15:00 UTC, Remote (video)",
                },
            },
        }
    ]
    assert p["client_reference_id"] == str(booking.pk)
    payment = Payment.objects.get(booking=booking)
    assert p["metadata"] == {"booking_id": str(booking.pk), "payment_id": str(payment.pk)}
    assert p["customer_email"] == "sam@example.com"
    token = booking.manage_token
    assert p["success_url"] == (
        f"http://testserver/payments/return/{token}/?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert p["cancel_url"] == f"http://testserver/payments/return/{token}/?cancelled=1"
    assert request.idempotency_key == f"checkout-{booking.pk}"
    (session,) = stripe.sessions
    assert response.json()["payment_url"] == session["url"]
    payment = Payment.objects.get()
    assert payment.checkout_session_id == session["id"]
    assert (payment.amount, payment.currency, payment.status) == (9000, "usd", "open")


def test_the_in_person_price_snapshot_is_what_stripe_charges(api, frozen, slot, stripe):
    assert hold(api, slot, mode="in_person").status_code == 201
    (session,) = stripe.sessions
    assert (session["amount_total"], session["currency"]) == (12000, "usd")


def test_the_session_expires_with_the_hold_at_least_30_minutes_after_its_creation(
    api, frozen, slot, stripe
):
    body = hold(api, slot).json()
    (session,) = stripe.sessions
    booking = Booking.objects.get()
    assert booking.hold_expires_at is not None
    assert session["expires_at"] == int(booking.hold_expires_at.timestamp())
    assert session["expires_at"] >= session["created"] + 30 * 60
    assert body["hold_expires_at"] == booking.hold_expires_at.isoformat().replace("+00:00", "Z")


def test_a_hold_shorter_than_stripes_minimum_is_stretched_to_it(
    api, frozen, slot, stripe, settings
):
    settings.BOOKING_HOLD_MINUTES = 10
    assert hold(api, slot).status_code == 201
    (session,) = stripe.sessions
    booking = Booking.objects.get()
    assert booking.hold_expires_at is not None
    assert session["expires_at"] == int(booking.hold_expires_at.timestamp())
    assert session["expires_at"] >= session["created"] + 30 * 60


def assert_released(api, slot, stripe, *, then_bookable: bool = True) -> None:
    """Nothing half-made: the hold is cancelled, no checkout open, the slot listed again."""
    booking = Booking.objects.get()
    assert booking.status == BookingStatus.CANCELLED
    assert not Payment.objects.filter(status=PaymentStatus.OPEN).exists()
    assert slot.pk in open_slot_ids(api)
    if then_bookable:
        assert hold(api, slot, email="kim@example.com").status_code == 201


def test_stripe_being_down_answers_503_and_releases_the_hold(api, frozen, slot, stripe):
    stripe.fail(500, times=2)  # the client's own retry fails too
    response = hold(api, slot)
    assert response.status_code == 503
    assert response.json()["code"] == "payment_unavailable"
    attempts = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len(attempts) == 2
    assert {a.idempotency_key for a in attempts} == {f"checkout-{Booking.objects.get().pk}"}
    assert_released(api, slot, stripe)


def test_a_single_stripe_500_is_retried_with_the_same_idempotency_key(api, frozen, slot, stripe):
    stripe.fail(500)
    response = hold(api, slot)
    assert response.status_code == 201
    first, second = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert first.idempotency_key == second.idempotency_key
    assert (first.status, second.status) == (500, 200)
    assert len(stripe.sessions) == 1


def test_stripe_refusing_the_session_answers_502_and_releases_the_hold(api, frozen, slot, stripe):
    stripe.fail(400, message="Invalid currency: xyz.", code="parameter_invalid_string")
    response = hold(api, slot)
    assert response.status_code == 502
    assert response.json()["code"] == "payment_unavailable"
    assert len(stripe.requests_to("POST", "/v1/checkout/sessions")) == 1  # not retried
    assert_released(api, slot, stripe)


def test_a_wrong_api_key_answers_502(api, frozen, slot, stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_wrong"
    use_timeout(settings, 5)
    response = hold(api, slot)
    assert response.status_code == 502
    assert_released(api, slot, stripe, then_bookable=False)


def test_stripe_timing_out_answers_503_and_releases_the_hold(api, frozen, slot, stripe, settings):
    use_timeout(settings, 0.3)
    stripe.delay(3, times=2)
    response = hold(api, slot)
    assert response.status_code == 503
    assert response.json()["code"] == "payment_unavailable"
    assert_released(api, slot, stripe)


def test_stripe_being_unreachable_answers_503(api, frozen, slot, stripe, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    use_timeout(settings, 1)
    response = hold(api, slot)
    assert response.status_code == 503
    assert_released(api, slot, stripe, then_bookable=False)


def test_the_hold_is_released_once_and_its_history_says_why(api, frozen, slot, stripe):
    stripe.fail(500, times=2)
    hold(api, slot)
    booking = Booking.objects.get()
    moves = [(e.from_status, e.to_status, e.reason) for e in booking.events.all()]
    assert moves == [
        ("", "pending_payment", "held"),
        ("pending_payment", "cancelled", "checkout_failed"),
    ]
    assert Payment.objects.get().status == PaymentStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_every_stripe_call_happens_outside_a_database_transaction(
    api, frozen, slot, stripe, tutor, remote, now
):
    """Hold, pay, cancel with a refund, and let another hold run out: each request to
    Stripe finds our connection outside any transaction (and so holding no locks)."""
    from bookings import services
    from tests.conftest import make_slot

    from .conftest import deliver

    ours = connections["default"]
    seen: list[tuple[str, str, bool]] = []
    stripe.on_request = lambda r: seen.append((r.method, r.path, ours.in_atomic_block))

    body = hold(api, slot).json()
    session_id = Payment.objects.get(booking_id=body["id"]).checkout_session_id
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    api.post(f"/api/bookings/{Booking.objects.get(pk=body['id']).manage_token}/cancel/")
    hold(api, make_slot(tutor, now + timedelta(days=3), remote=remote), email="kim@example.com")
    services.bookings_expire_holds(now=now + timedelta(hours=1))

    paths = [(method, path.rsplit("/", 1)[-1]) for method, path, _ in seen]
    assert paths == [
        ("POST", "sessions"),
        ("POST", "refunds"),
        ("POST", "sessions"),
        ("POST", "expire"),
    ]
    assert [in_transaction for *_, in_transaction in seen] == [False] * 4


def test_a_hold_answers_with_the_sessions_url_again_when_read_back(api, frozen, slot, stripe):
    body = hold(api, slot).json()
    again = api.get(f"/api/bookings/{Booking.objects.get().manage_token}/").json()
    assert again["payment_url"] == body["payment_url"]
    assert len(stripe.requests) == 1


def test_the_hold_expiry_sweeper_closes_the_stripe_session(api, frozen, slot, stripe, now):
    from bookings import services

    hold(api, slot)
    session_id = Payment.objects.get().checkout_session_id
    services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert Booking.objects.get().status == BookingStatus.EXPIRED
    assert len(stripe.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1
    assert stripe.session(session_id)["status"] == "expired"
    assert Payment.objects.get().status == PaymentStatus.EXPIRED
