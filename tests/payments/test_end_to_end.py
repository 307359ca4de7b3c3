"""The whole story through HTTP only, as a student, Stripe and the API see it."""

import pytest

from bookings.models import BookingEvent, BookingStatus
from tests.conftest import hold

from .conftest import deliver

pytestmark = pytest.mark.django_db


def slot_ids(api) -> list[int]:
    return [s["id"] for s in api.get("/api/slots/", {"tutor": "ada"}).json()["results"]]


def test_hold_pay_replay_forge_and_cancel_a_day_ahead(api, frozen, slot, stripe):
    body = hold(api, slot).json()
    (session,) = stripe.sessions
    assert (session["amount_total"], session["currency"]) == (9000, "usd")
    assert session["client_reference_id"] == body["id"]
    assert session["metadata"]["booking_id"] == body["id"]
    assert session["expires_at"] - session["created"] >= 30 * 60
    assert body["payment_url"] == session["url"]
    manage = f"/api/bookings/{body['manage_url'].rstrip('/').rsplit('/', 1)[-1]}/"

    forged = stripe.event(
        "checkout.session.completed",
        {**session, "status": "complete", "payment_status": "paid", "payment_intent": "pi_x"},
    )
    assert deliver(forged, secret="whsec_forged").status_code == 400
    assert api.get(manage).json()["status"] == "pending_payment"

    stripe.complete(session["id"])
    paid = stripe.session_event("checkout.session.completed", session["id"])
    assert deliver(paid).status_code == 200
    assert deliver(paid).status_code == 200
    assert api.get(manage).json()["status"] == "confirmed"
    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1

    cancelled = api.post(manage + "cancel/").json()
    assert cancelled["refund"] == {"amount": 9000, "currency": "usd"}
    (refund,) = stripe.requests_to("POST", "/v1/refunds")
    assert refund.params["amount"] == "9000"
    assert refund.params["payment_intent"] == stripe.session(session["id"])["payment_intent"]
    assert refund.idempotency_key
    assert slot.pk in slot_ids(api)


def test_a_session_that_expires_unpaid_opens_the_slot_again(api, frozen, slot, stripe):
    hold(api, slot)
    assert slot.pk not in slot_ids(api)
    (session,) = stripe.sessions
    assert (
        deliver(stripe.event("checkout.session.expired", stripe.expire(session["id"]))).status_code
        == 200
    )
    assert slot.pk in slot_ids(api)
    assert hold(api, slot, email="kim@example.com").status_code == 201
