"""When no webhook comes: the return page and the reconciliation task ask Stripe."""

from datetime import timedelta

import pytest

from bookings import services as booking_services
from bookings.models import Booking, BookingEvent, BookingStatus
from payments.models import Payment, PaymentStatus
from payments.tasks import reconcile
from tests.conftest import hold

from .conftest import deliver

pytestmark = pytest.mark.django_db


def return_url(booking: Booking, query: str = "") -> str:
    return f"/payments/return/{booking.manage_token}/{query}"


def status_of(booking: Booking) -> str:
    booking.refresh_from_db()
    return booking.status


def retrieves(stripe, session_id: str) -> int:
    return len(
        [
            r
            for r in stripe.requests_to("GET", "/v1/checkout/sessions/")
            if r.path.endswith(session_id)
        ]
    )


# --- the return page --------------------------------------------------------------------------


def test_the_return_page_confirms_from_a_paid_session_when_no_webhook_came(
    client, held, session_id, stripe
):
    stripe.complete(session_id)
    response = client.get(return_url(held, f"?session_id={session_id}"))
    assert response.status_code == 302
    assert response["Location"] == held.manage_path
    assert status_of(held) == BookingStatus.CONFIRMED
    assert retrieves(stripe, session_id) == 1
    # The webhook arriving afterwards changes nothing.
    assert (
        deliver(stripe.session_event("checkout.session.completed", session_id)).json()["outcome"]
        == "already_paid"
    )
    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1


def test_the_return_page_leaves_an_unpaid_session_held(client, held, session_id, stripe):
    response = client.get(return_url(held, f"?session_id={session_id}"))
    assert response.status_code == 302
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_the_return_page_does_not_ask_stripe_once_the_webhook_came(
    client, confirmed, session_id, stripe
):
    response = client.get(return_url(confirmed, f"?session_id={session_id}"))
    assert response.status_code == 302
    assert retrieves(stripe, session_id) == 0


def test_the_return_page_trusts_our_session_not_the_query_string(
    client, api, held, session_id, stripe, slot, tutor, remote, now
):
    from tests.conftest import make_slot

    other_slot = make_slot(tutor, now + timedelta(days=4), remote=remote)
    hold(api, other_slot, email="kim@example.com")
    other = Payment.objects.exclude(booking=held).get()
    assert other.checkout_session_id
    stripe.complete(other.checkout_session_id)  # someone else's paid session
    client.get(return_url(held, f"?session_id={other.checkout_session_id}"))
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_the_cancel_url_returns_to_the_booking_still_held(client, held, stripe):
    response = client.get(return_url(held, "?cancelled=1"))
    assert response.status_code == 302
    assert response["Location"] == held.manage_path
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_the_return_page_with_stripe_down_still_answers(client, held, session_id, stripe):
    stripe.complete(session_id)
    stripe.fail(500, times=2)
    response = client.get(return_url(held, f"?session_id={session_id}"))
    assert response.status_code == 302
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_the_return_page_for_an_unknown_booking_is_a_404(client, db, stripe):
    assert client.get("/payments/return/" + "x" * 43 + "/").status_code == 404


# --- reconciliation ---------------------------------------------------------------------------


def test_reconciliation_settles_a_paid_session_whose_webhook_never_came(
    held, session_id, stripe, frozen
):
    stripe.complete(session_id)
    frozen.shift(timedelta(minutes=5))
    assert reconcile() == 1
    assert status_of(held) == BookingStatus.CONFIRMED
    assert Payment.objects.get().status == PaymentStatus.PAID
    assert reconcile() == 0  # nothing left to settle, nothing asked again
    assert retrieves(stripe, session_id) == 1
    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1


def test_reconciliation_leaves_unpaid_sessions_alone(held, session_id, stripe, frozen):
    frozen.shift(timedelta(minutes=5))
    assert reconcile() == 0
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_reconciliation_gives_a_fresh_checkout_time_before_asking(held, session_id, stripe):
    stripe.complete(session_id)
    assert reconcile() == 0
    assert retrieves(stripe, session_id) == 0


def test_reconciliation_releases_a_session_stripe_expired(
    api, held, session_id, stripe, frozen, slot
):
    stripe.expire(session_id)
    frozen.shift(timedelta(minutes=5))
    assert reconcile() == 1
    assert status_of(held) == BookingStatus.EXPIRED
    assert hold(api, slot, email="kim@example.com").status_code == 201


def test_reconciliation_refunds_late_money_for_a_slot_taken_again(
    api, held, session_id, stripe, frozen, slot, now
):
    """Stripe was down when the hold ran out, the webhook got lost, and the slot changed
    hands: the student's money goes back in full, once."""
    stripe.complete(session_id)
    stripe.fail(500, times=2)
    frozen.shift(timedelta(minutes=31))
    booking_services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert status_of(held) == BookingStatus.EXPIRED
    assert Payment.objects.get().status == PaymentStatus.OPEN  # Stripe never said closed
    assert hold(api, slot, email="kim@example.com").status_code == 201
    assert reconcile() == 1
    assert reconcile() == 0
    (refund,) = stripe.requests_to("POST", "/v1/refunds")
    assert refund.params["amount"] == "9000"
    assert refund.params["payment_intent"] == stripe.session(session_id)["payment_intent"]
    assert status_of(held) == BookingStatus.EXPIRED


def test_the_sweeper_settles_a_hold_whose_session_was_paid_without_a_webhook(
    held, session_id, stripe, now
):
    """Paid in the last second of the hold; the webhook is late. Stripe refuses to
    expire a completed session, so the sweeper asks Stripe and confirms at once."""
    stripe.complete(session_id)
    booking_services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert len(stripe.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1
    assert retrieves(stripe, session_id) == 1
    assert status_of(held) == BookingStatus.CONFIRMED
    assert Payment.objects.get().status == PaymentStatus.PAID


def test_the_sweeper_records_a_session_stripe_already_expired_itself(held, session_id, stripe, now):
    stripe.expire(session_id)  # Stripe's clock got there first; its event is still to come
    booking_services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert status_of(held) == BookingStatus.EXPIRED
    assert Payment.objects.get().status == PaymentStatus.EXPIRED
    assert retrieves(stripe, session_id) == 1


def test_the_return_page_after_the_hold_ran_out_confirms_late_money(
    client, held, session_id, stripe, now
):
    stripe.complete(session_id)
    stripe.fail(500, times=2)  # the sweeper could not reach Stripe to close the session
    booking_services.bookings_expire_holds(now=now + timedelta(minutes=31))
    assert status_of(held) == BookingStatus.EXPIRED
    client.get(return_url(held, f"?session_id={session_id}"))
    assert status_of(held) == BookingStatus.CONFIRMED


def test_no_booking_is_confirmed_without_stripe_saying_it_was_paid(
    client, held, session_id, stripe, frozen
):
    """Every path that could confirm, with Stripe saying 'not paid' or saying nothing."""
    forged = stripe.event(
        "checkout.session.completed",
        {**stripe.session(session_id), "status": "complete", "payment_status": "paid"},
    )
    assert deliver(forged, signature=None).status_code == 400
    assert deliver(forged, secret="whsec_guess").status_code == 400
    stripe.complete(session_id, payment_status="unpaid")
    deliver(stripe.session_event("checkout.session.completed", session_id))
    deliver(stripe.session_event("checkout.session.async_payment_succeeded", session_id))
    client.get(return_url(held, f"?session_id={session_id}"))
    frozen.shift(timedelta(minutes=5))
    reconcile()
    assert status_of(held) == BookingStatus.PENDING_PAYMENT
    assert not BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).exists()
