"""POST /payments/stripe/webhook/: signed events confirm, release or refund, exactly once."""

import json
import time
from datetime import timedelta

import pytest
from django.core import mail

from bookings import services
from bookings.models import Booking, BookingEvent, BookingStatus
from payments.models import Payment, PaymentStatus, Refund, StripeEvent
from tests.conftest import hold

from .conftest import WEBHOOK_URL, deliver

pytestmark = pytest.mark.django_db


def confirmations(booking: Booking) -> int:
    return BookingEvent.objects.filter(booking=booking, to_status=BookingStatus.CONFIRMED).count()


def status_of(booking: Booking) -> str:
    booking.refresh_from_db()
    return booking.status


def open_slot_ids(api) -> list[int]:
    return [s["id"] for s in api.get("/api/slots/", {"tutor": "ada"}).json()["results"]]


# --- signatures ---------------------------------------------------------------------------


def test_a_paid_completed_session_confirms_the_booking(held, session_id, stripe):
    session = stripe.complete(session_id)
    response = deliver(stripe.session_event("checkout.session.completed", session_id))
    assert response.status_code == 200
    assert response.json()["outcome"] == "confirmed"
    assert status_of(held) == BookingStatus.CONFIRMED
    assert confirmations(held) == 1
    event = held.events.get(to_status=BookingStatus.CONFIRMED)
    assert event.actor == "payment"
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PAID
    assert payment.payment_intent_id == session["payment_intent"]
    assert held.hold_expires_at is None


def test_a_forged_signature_is_a_400_and_changes_nothing(held, session_id, stripe):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    response = deliver(event, secret="whsec_not_ours")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
    assert status_of(held) == BookingStatus.PENDING_PAYMENT
    assert Payment.objects.get().status == PaymentStatus.OPEN
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "signature",
    [None, "", "t=123", "v1=abc", "t=abc,v1=def", "garbage", "t=1,v1=" + "0" * 64],
)
def test_a_missing_or_malformed_signature_is_a_400(held, session_id, stripe, signature):
    stripe.complete(session_id)
    response = deliver(
        stripe.session_event("checkout.session.completed", session_id), signature=signature
    )
    assert response.status_code == 400
    assert status_of(held) == BookingStatus.PENDING_PAYMENT
    assert not StripeEvent.objects.exists()


def test_a_body_changed_after_signing_is_a_400(held, session_id, stripe, settings):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    signature = stripe.sign(
        json.dumps({**event, "id": "evt_other"}), settings.STRIPE_WEBHOOK_SECRET
    )
    response = deliver(event, signature=signature)
    assert response.status_code == 400
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_an_old_signed_event_is_refused_as_a_replay(held, session_id, stripe):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    response = deliver(event, timestamp=int(time.time()) - 600)
    assert response.status_code == 400
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_without_a_configured_webhook_secret_every_event_is_refused(
    held, session_id, stripe, settings
):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    signature = stripe.sign(json.dumps(event), "")
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert deliver(event, signature=signature).status_code == 400
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_a_get_is_not_allowed(client, db):
    assert client.get(WEBHOOK_URL).status_code == 405


def test_a_signed_body_that_is_not_json_is_a_400(db, settings, stripe):
    from django.test import Client

    body = "not json"
    response = Client().post(
        WEBHOOK_URL,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe.sign(body, settings.STRIPE_WEBHOOK_SECRET),
    )
    assert response.status_code == 400


# --- exactly once, in any order -----------------------------------------------------------


def test_the_same_event_delivered_again_changes_nothing(held, session_id, stripe):
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    assert deliver(event).json()["outcome"] == "confirmed"
    again = deliver(event)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert confirmations(held) == 1
    assert StripeEvent.objects.count() == 1


def test_a_second_paid_event_for_the_same_session_confirms_nothing_more(held, session_id, stripe):
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    response = deliver(stripe.session_event("checkout.session.async_payment_succeeded", session_id))
    assert response.json()["outcome"] == "already_paid"
    assert confirmations(held) == 1
    assert not stripe.requests_to("POST", "/v1/refunds")


def test_an_expiry_arriving_after_the_payment_never_undoes_it(held, session_id, stripe):
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    late = stripe.event(
        "checkout.session.expired", {**stripe.session(session_id), "status": "expired"}
    )
    assert deliver(late).status_code == 200
    assert status_of(held) == BookingStatus.CONFIRMED
    assert Payment.objects.get().status == PaymentStatus.PAID


def test_a_completed_session_that_is_not_paid_yet_confirms_nothing(held, session_id, stripe):
    stripe.complete(session_id, payment_status="unpaid")
    response = deliver(stripe.session_event("checkout.session.completed", session_id))
    assert response.status_code == 200
    assert status_of(held) == BookingStatus.PENDING_PAYMENT
    assert Payment.objects.get().status == PaymentStatus.OPEN


def test_an_asynchronous_payment_that_succeeds_confirms_the_booking(held, session_id, stripe):
    stripe.complete(session_id, payment_status="unpaid")
    deliver(stripe.session_event("checkout.session.completed", session_id))
    stripe.settle_async(session_id, paid=True)
    response = deliver(stripe.session_event("checkout.session.async_payment_succeeded", session_id))
    assert response.json()["outcome"] == "confirmed"
    assert status_of(held) == BookingStatus.CONFIRMED


def test_an_async_success_event_whose_session_is_unpaid_confirms_nothing(held, session_id, stripe):
    stripe.complete(session_id, payment_status="unpaid")
    response = deliver(stripe.session_event("checkout.session.async_payment_succeeded", session_id))
    assert response.status_code == 200
    assert status_of(held) == BookingStatus.PENDING_PAYMENT


def test_an_asynchronous_payment_that_fails_releases_the_slot(api, held, session_id, stripe, slot):
    stripe.complete(session_id, payment_status="unpaid")
    stripe.settle_async(session_id, paid=False)
    response = deliver(stripe.session_event("checkout.session.async_payment_failed", session_id))
    assert response.status_code == 200
    assert status_of(held) == BookingStatus.CANCELLED
    assert Payment.objects.get().status == PaymentStatus.FAILED
    assert slot.pk in open_slot_ids(api)


def test_an_expired_session_opens_the_slot_again(api, held, session_id, stripe, slot):
    assert slot.pk not in open_slot_ids(api)
    response = deliver(stripe.event("checkout.session.expired", stripe.expire(session_id)))
    assert response.status_code == 200
    assert status_of(held) == BookingStatus.EXPIRED
    assert Payment.objects.get().status == PaymentStatus.EXPIRED
    assert not stripe.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")
    assert slot.pk in open_slot_ids(api)
    assert hold(api, slot, email="kim@example.com").status_code == 201


# --- late money -----------------------------------------------------------------------------


def hold_runs_out_unseen(stripe, session_id: str, now) -> None:
    """The student pays in the hold's last moment; when the sweeper expires the hold,
    Stripe cannot be reached to close (or ask about) the session, and the webhook is
    still to come: the booking is expired and the money arrives late."""
    stripe.complete(session_id)
    stripe.fail(500, times=2)
    services.bookings_expire_holds(now=now + timedelta(minutes=31))


def test_money_after_the_hold_expired_confirms_if_the_slot_is_still_free(
    held, session_id, stripe, now
):
    hold_runs_out_unseen(stripe, session_id, now)
    assert status_of(held) == BookingStatus.EXPIRED
    response = deliver(stripe.session_event("checkout.session.completed", session_id))
    assert response.json()["outcome"] == "confirmed"
    assert status_of(held) == BookingStatus.CONFIRMED
    assert not stripe.requests_to("POST", "/v1/refunds")


def test_an_expired_event_then_a_completed_event_confirms_if_the_slot_is_free(
    held, session_id, stripe
):
    deliver(
        stripe.event(
            "checkout.session.expired", {**stripe.session(session_id), "status": "expired"}
        )
    )
    assert status_of(held) == BookingStatus.EXPIRED
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    assert status_of(held) == BookingStatus.CONFIRMED
    assert confirmations(held) == 1


def test_money_after_the_slot_was_taken_again_is_refunded_in_full_once(
    api, held, session_id, stripe, slot, now, django_capture_on_commit_callbacks
):
    hold_runs_out_unseen(stripe, session_id, now)
    assert hold(api, slot, email="kim@example.com").status_code == 201
    other = Booking.objects.exclude(pk=held.pk).get()
    session = stripe.session(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "refunded_late"
    deliver(event)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    (refund_request,) = stripe.requests_to("POST", "/v1/refunds")
    assert refund_request.params["payment_intent"] == session["payment_intent"]
    assert refund_request.params["amount"] == "9000"
    assert refund_request.idempotency_key
    assert status_of(held) == BookingStatus.EXPIRED
    assert status_of(other) == BookingStatus.PENDING_PAYMENT
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (9000, "succeeded")
    assert refund.idempotency_key == refund_request.idempotency_key
    assert Payment.objects.get(booking=held).refunded_amount == 9000
    told = [m for m in mail.outbox if m.subject.startswith("Refunded")]
    assert len(told) == 1
    assert told[0].to == ["sam@example.com"]


def test_a_late_refund_stripe_cannot_take_now_is_owed_and_paid_by_the_retry_task(
    api, held, session_id, stripe, slot, now, frozen
):
    from payments.tasks import refunds_retry

    hold_runs_out_unseen(stripe, session_id, now)
    assert hold(api, slot, email="kim@example.com").status_code == 201
    stripe.fail(500, times=2)
    response = deliver(stripe.session_event("checkout.session.completed", session_id))
    assert response.status_code == 200  # the debt is stored: no need for Stripe to resend
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.stripe_refund_id) == (9000, "pending", None)
    frozen.shift(timedelta(minutes=5))
    assert refunds_retry() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    made = [r for r in stripe.requests_to("POST", "/v1/refunds") if r.status == 200]
    assert [r.idempotency_key for r in made] == [refund.idempotency_key]


def test_money_for_a_hold_the_student_cancelled_while_paying_is_refunded_once(
    api, held, session_id, stripe
):
    session = stripe.complete(session_id)  # paid in another tab a moment earlier
    assert api.post(f"/api/bookings/{held.manage_token}/cancel/").status_code == 200
    assert status_of(held) == BookingStatus.CANCELLED
    deliver(stripe.session_event("checkout.session.completed", session_id))
    (refund_request,) = stripe.requests_to("POST", "/v1/refunds")
    assert refund_request.params["payment_intent"] == session["payment_intent"]
    assert refund_request.params["amount"] == "9000"
    assert status_of(held) == BookingStatus.CANCELLED


# --- what we ignore -------------------------------------------------------------------------


def test_an_event_we_do_not_handle_is_answered_200_and_recorded(db, stripe):
    event = stripe.event("customer.created", {"id": "cus_1", "object": "customer"})
    response = deliver(event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert StripeEvent.objects.get().event_id == event["id"]


def test_a_session_we_never_made_is_answered_200(db, stripe):
    obj = {"id": "cs_test_elsewhere", "object": "checkout.session", "payment_status": "paid"}
    response = deliver(stripe.event("checkout.session.completed", obj))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown session"


@pytest.mark.parametrize("reference", ["not-a-uuid", "12", "00000000-0000-0000-0000-000000000000"])
def test_a_session_naming_no_booking_of_ours_is_answered_200(db, stripe, reference):
    obj = {
        "id": "cs_test_elsewhere",
        "object": "checkout.session",
        "payment_status": "paid",
        "status": "complete",
        "client_reference_id": reference,
        "metadata": {"booking_id": reference},
    }
    response = deliver(stripe.event("checkout.session.completed", obj))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown session"


def test_a_session_is_found_by_its_booking_when_our_session_id_is_missing(held, session_id, stripe):
    """The webhook can beat our own write of the session id (a very fast payer)."""
    Payment.objects.update(checkout_session_id=None)
    stripe.complete(session_id)
    deliver(stripe.session_event("checkout.session.completed", session_id))
    assert status_of(held) == BookingStatus.CONFIRMED
    assert Payment.objects.get().checkout_session_id == session_id


def test_an_event_without_an_id_is_ignored(db, stripe):
    event = stripe.event("checkout.session.completed", {"id": "cs_x"})
    del event["id"]
    response = deliver(event)
    assert response.status_code == 200
    assert not StripeEvent.objects.exists()


def test_events_without_ids_touch_nothing(api, confirmed, stripe, tutor, remote, now):
    """A blank id must never match the rows whose id is blank."""
    from tests.conftest import make_slot

    stripe.fail(500, times=2)
    hold(api, make_slot(tutor, now + timedelta(days=5), remote=remote), email="kim@example.com")
    failed = Payment.objects.get(checkout_session_id=None)  # its checkout never opened
    stripe.fail(500, times=2)
    api.post(f"/api/bookings/{confirmed.manage_token}/cancel/")
    refund = Refund.objects.get(stripe_refund_id=None)  # Stripe has not taken it yet
    before = list(Payment.objects.values_list("status", "refunded_amount").order_by("pk"))

    session = {"object": "checkout.session", "status": "complete", "payment_status": "paid"}
    charge = {"object": "charge", "payment_intent": None, "amount_refunded": 9000}
    outcomes = [
        deliver(stripe.event("checkout.session.completed", session)).json()["outcome"],
        deliver(stripe.event("refund.updated", {"object": "refund", "status": "succeeded"})).json()[
            "outcome"
        ],
        deliver(stripe.event("charge.refunded", charge)).json()["outcome"],
    ]

    assert outcomes == ["unknown session", "unknown refund", "unknown payment"]
    failed.refresh_from_db()
    assert failed.status == PaymentStatus.FAILED
    refund.refresh_from_db()
    assert refund.status == "pending"
    assert list(Payment.objects.values_list("status", "refunded_amount").order_by("pk")) == before
    assert not [r for r in stripe.requests_to("POST", "/v1/refunds") if r.status == 200]
