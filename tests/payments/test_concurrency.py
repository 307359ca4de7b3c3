"""Real concurrency on PostgreSQL: Stripe delivering one event several times at once."""

from collections import Counter

import pytest
from rest_framework.test import APIClient

from bookings.models import Booking, BookingEvent, BookingStatus
from payments.models import Payment, StripeEvent
from tests.bookings.test_concurrency import run_concurrently
from tests.conftest import hold

from .conftest import deliver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_completed_event_delivered_from_eight_threads_confirms_once(slot, frozen, stripe):
    assert hold(APIClient(), slot).status_code == 201
    booking = Booking.objects.get()
    session_id = Payment.objects.get().checkout_session_id
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)

    results = run_concurrently(8, lambda i: deliver(event).status_code)

    assert results == [200] * 8
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1
    assert StripeEvent.objects.count() == 1


def test_different_paid_events_for_one_session_at_once_confirm_once(slot, frozen, stripe):
    assert hold(APIClient(), slot).status_code == 201
    session_id = Payment.objects.get().checkout_session_id
    stripe.complete(session_id)
    events = [
        stripe.session_event(
            "checkout.session.completed" if i % 2 else "checkout.session.async_payment_succeeded",
            session_id,
        )
        for i in range(8)
    ]

    results = run_concurrently(8, lambda i: deliver(events[i]).json()["outcome"])

    assert Counter(results) == {"confirmed": 1, "already_paid": 7}
    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1


def test_late_money_delivered_concurrently_for_a_retaken_slot_is_refunded_once(
    slot, frozen, stripe, now
):
    from datetime import timedelta

    from bookings import services

    assert hold(APIClient(), slot).status_code == 201
    session_id = Payment.objects.get().checkout_session_id
    stripe.complete(session_id)
    stripe.fail(500, times=2)  # the sweeper cannot ask Stripe; the webhook comes later
    services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert hold(APIClient(), slot, email="kim@example.com").status_code == 201
    events = [stripe.session_event("checkout.session.completed", session_id) for _ in range(6)]

    run_concurrently(6, lambda i: deliver(events[i]).status_code)

    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
    assert Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT).count() == 1
