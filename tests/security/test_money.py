"""Only the booking's own checkout, paid in full in its currency, confirms it.

Any other money that names a booking (another checkout session, a short or over
payment, another currency) is recorded, refunded in full, and student and tutor are
told. Signed webhooks with odd bodies get a 4xx or a 200 "ignored", never a 500.
"""

import json
from typing import Any

import pytest

from bookings.models import Booking, BookingStatus, Notification, NotificationKind
from payments import gateway
from payments.models import Payment, PaymentKind, PaymentStatus, Refund, StripeEvent
from tests.payments.conftest import WEBHOOK_URL, deliver
from tests.payments.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db


def status_of(booking: Booking) -> str:
    booking.refresh_from_db()
    return booking.status


def refused_notices(booking: Booking) -> set[str]:
    return set(
        Notification.objects.filter(
            booking=booking, kind=NotificationKind.PAYMENT_REFUSED
        ).values_list("recipient", flat=True)
    )


def stray_session(stripe: FakeStripe, booking: Booking, *, amount: int = 9000) -> str:
    """A second, paid checkout session in our account that names `booking`."""
    session = gateway._client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": amount,
                        "product_data": {"name": "Not this booking's checkout"},
                    },
                }
            ],
            "client_reference_id": str(booking.pk),
            "metadata": {"booking_id": str(booking.pk)},
            "success_url": "https://example.com/ok",
        },
        options={"idempotency_key": f"stray-{booking.pk}"},
    )
    stripe.complete(session.id)
    return session.id


def test_a_paid_session_that_is_not_the_bookings_own_never_confirms_it(held, stripe):
    foreign = stray_session(stripe, held)

    response = deliver(stripe.session_event("checkout.session.completed", foreign))

    assert response.status_code == 200
    assert response.json()["outcome"] == "refused"
    assert status_of(held) == BookingStatus.PENDING_PAYMENT  # its own checkout still open
    stray = Payment.objects.get(checkout_session_id=foreign)
    assert (stray.kind, stray.status) == (PaymentKind.STRAY, PaymentStatus.REFUSED)
    refund = Refund.objects.get(payment=stray)
    assert (refund.amount, refund.status) == (9000, "succeeded")
    assert [r.path for r in stripe.requests_to("POST", "/v1/refunds")] == ["/v1/refunds"]
    assert refused_notices(held) == {"student", "tutor"}


def test_the_same_stray_money_replayed_is_refunded_once(held, stripe):
    foreign = stray_session(stripe, held)
    event = stripe.session_event("checkout.session.completed", foreign)
    deliver(event)
    again = deliver({**event, "id": "evt_another_delivery"})

    assert again.json()["outcome"] == "already_refused"
    assert Refund.objects.count() == 1
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1


def test_a_session_naming_the_booking_only_by_client_reference_never_confirms(held, stripe):
    foreign = stray_session(stripe, held)
    session = stripe.session(foreign)
    session["metadata"] = {}
    event = stripe.event("checkout.session.completed", session)

    assert deliver(event).json()["outcome"] == "refused"
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


@pytest.mark.parametrize(
    ("amount", "currency", "why"),
    [(100, "usd", "wrong_amount"), (9001, "usd", "wrong_amount"), (9000, "eur", "wrong_currency")],
)
def test_the_bookings_own_session_paying_the_wrong_money_is_refused_and_refunded(
    held, session_id, stripe, amount, currency, why
):
    stripe._state.sessions[session_id].update(amount_total=amount, currency=currency)
    stripe.complete(session_id)

    response = deliver(stripe.session_event("checkout.session.completed", session_id))

    assert response.json()["outcome"] == "refused"
    # Its one checkout is used up: the hold is let go rather than kept for nobody.
    assert status_of(held) == BookingStatus.CANCELLED
    payment = Payment.objects.get(booking=held)
    assert (payment.status, payment.received_amount, payment.received_currency) == (
        PaymentStatus.REFUSED,
        amount,
        currency,
    )
    refund = Refund.objects.get(payment=payment)
    assert refund.amount == amount
    assert why in refund.reason
    assert refused_notices(held) == {"student", "tutor"}


def test_an_event_without_an_amount_never_confirms(held, session_id, stripe):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    del event["data"]["object"]["amount_total"]

    assert deliver(event).json()["outcome"] == "refused"
    assert status_of(held) != BookingStatus.CONFIRMED


def test_our_own_session_whose_id_we_never_stored_is_still_recognised(held, session_id, stripe):
    # As if we crashed between Stripe creating the session and storing its id.
    Payment.objects.filter(booking=held).update(checkout_session_id=None)
    stripe.complete(session_id)

    response = deliver(stripe.session_event("checkout.session.completed", session_id))

    assert response.json()["outcome"] == "confirmed"
    assert status_of(held) == BookingStatus.CONFIRMED
    assert Payment.objects.get(booking=held).checkout_session_id == session_id


def test_the_return_page_settles_only_from_the_payments_own_session(held, session_id, stripe):
    from payments import services

    payment = Payment.objects.get(booking=held)
    foreign = stray_session(stripe, held)
    session = gateway.retrieve_checkout_session(foreign)

    assert services.settle_from_session(payment=payment, session=session, now=held.created_at) == (
        "not_its_session"
    )
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


# --- odd but signed bodies ----------------------------------------------------------------


def post_signed(payload: str, settings: Any) -> Any:
    from django.test import Client

    signature = FakeStripe.sign(payload, settings.STRIPE_WEBHOOK_SECRET)
    return Client().post(
        WEBHOOK_URL,
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


@pytest.mark.parametrize("body", ["[]", '"event"', "42", "null", '[{"id": "evt_1"}]', "{"])
def test_a_signed_body_that_is_not_an_event_object_is_a_400(stripe, settings, body):
    response = post_signed(body, settings)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "x",
        {"object": None},
        {"object": []},
        {"object": "cs_123"},
        {"object": {"id": ["cs"], "metadata": "x", "amount_total": "9000"}},
        {"object": {"id": "cs_x", "metadata": {"booking_id": ["x"]}, "payment_status": "paid"}},
    ],
)
@pytest.mark.parametrize(
    "kind", ["checkout.session.completed", "charge.refunded", "refund.updated"]
)
def test_a_signed_event_with_a_malformed_object_is_ignored_not_a_500(
    held, stripe, settings, data, kind
):
    event = {"id": f"evt_{kind}_{json.dumps(data)}"[:200], "type": kind, "data": data}
    response = post_signed(json.dumps(event), settings)
    assert response.status_code == 200
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_a_stored_event_keeps_no_manage_token(held, session_id, stripe):
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))

    stored = json.dumps(StripeEvent.objects.get().payload)
    assert held.manage_token not in stored
    assert "[redacted]" in stored
