"""Payments tests run the official Stripe client against a fake Stripe on 127.0.0.1.

Nothing of ours is mocked: the hold goes through the API, the gateway makes real HTTP
requests, webhooks arrive signed with the real scheme at the real URL.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from bookings.models import Booking
from payments import gateway
from payments.models import Payment
from tests.conftest import hold

from .fake_stripe import FakeStripe

WEBHOOK_URL = "/payments/stripe/webhook/"


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def stripe(settings: Any, fake_stripe: FakeStripe) -> Iterator[FakeStripe]:
    """Stripe configured and pointed at the fake. The gateway caches its client, so the
    cache is cleared on the way in and out (and by tests that change the timeout)."""
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = fake_stripe.url
    settings.STRIPE_TIMEOUT_SECONDS = 5
    gateway._client.cache_clear()
    yield fake_stripe
    gateway._client.cache_clear()


def use_timeout(settings: Any, seconds: float) -> None:
    settings.STRIPE_TIMEOUT_SECONDS = seconds
    gateway._client.cache_clear()


def deliver(
    event: dict[str, Any],
    *,
    secret: str | None = None,
    signature: str | None = "sign",
    timestamp: int | None = None,
) -> Any:
    """POST an event to our webhook the way Stripe does: raw JSON, signed header."""
    payload = json.dumps(event)
    headers: dict[str, str] = {}
    if signature == "sign":
        signature = FakeStripe.sign(
            payload, secret or settings.STRIPE_WEBHOOK_SECRET, timestamp=timestamp
        )
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return Client().post(WEBHOOK_URL, payload, content_type="application/json", headers=headers)


@pytest.fixture
def held(api: Any, frozen: Any, slot: Any, stripe: FakeStripe) -> Booking:
    """A remote hold (9000 usd) with an open Stripe Checkout Session behind it."""
    response = hold(api, slot)
    assert response.status_code == 201, response.content
    return Booking.objects.get(pk=response.json()["id"])


@pytest.fixture
def session_id(held: Booking) -> str:
    session = Payment.objects.get(booking=held).checkout_session_id
    assert session
    return session


@pytest.fixture
def confirmed(held: Booking, session_id: str, stripe: FakeStripe) -> Booking:
    """Paid through Stripe and confirmed by the checkout.session.completed webhook."""
    stripe.complete(session_id)
    response = deliver(stripe.session_event("checkout.session.completed", session_id))
    assert response.status_code == 200, response.content
    held.refresh_from_db()
    assert held.status == "confirmed"
    return held
