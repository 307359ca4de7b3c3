"""Cancellations refund per policy through Stripe; refund state follows Stripe's events."""

from datetime import timedelta

import pytest
from kombu.exceptions import OperationalError

from payments import services, tasks
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.tasks import refunds_retry

from .conftest import deliver

pytestmark = pytest.mark.django_db


def cancel(api, booking):
    return api.post(f"/api/bookings/{booking.manage_token}/cancel/")


def test_a_student_cancelling_a_day_ahead_gets_one_full_refund_on_the_payment_intent(
    api, confirmed, stripe
):
    response = cancel(api, confirmed)
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 9000, "currency": "usd"}
    payment = Payment.objects.get()
    (request,) = stripe.requests_to("POST", "/v1/refunds")
    assert request.params["payment_intent"] == payment.payment_intent_id
    assert request.params["amount"] == "9000"
    assert request.params["metadata"] == {"booking_id": str(confirmed.pk)}
    refund = Refund.objects.get()
    assert request.idempotency_key == refund.idempotency_key
    assert refund.stripe_refund_id and refund.stripe_refund_id.startswith("re_")
    assert (refund.amount, refund.status) == (9000, RefundStatus.SUCCEEDED)
    assert payment.refunded_amount == 9000


def test_cancelling_exactly_24_hours_ahead_still_refunds_in_full(api, confirmed, stripe, frozen):
    frozen.shift(timedelta(hours=24))  # the session starts in exactly 24 hours
    assert cancel(api, confirmed).json()["refund"]["amount"] == 9000
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1


def test_a_student_cancelling_inside_24_hours_gets_no_refund(api, confirmed, stripe, frozen):
    frozen.shift(timedelta(hours=25))  # the session is 23 hours away
    response = cancel(api, confirmed)
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 0, "currency": "usd"}
    assert not stripe.requests_to("POST", "/v1/refunds")
    assert not Refund.objects.exists()


def test_a_tutor_cancelling_refunds_in_full_even_at_the_last_minute(
    tutor_api, confirmed, stripe, frozen
):
    frozen.shift(timedelta(hours=47))  # the session starts in an hour
    response = tutor_api.post(f"/api/tutor/bookings/{confirmed.pk}/cancel/")
    assert response.status_code == 200
    (request,) = stripe.requests_to("POST", "/v1/refunds")
    assert request.params["amount"] == "9000"
    assert Refund.objects.get().status == RefundStatus.SUCCEEDED


def test_cancelling_twice_asks_stripe_for_one_refund(api, confirmed, stripe):
    cancel(api, confirmed)
    assert cancel(api, confirmed).status_code == 200
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
    assert Refund.objects.count() == 1


def test_cancelling_a_hold_refunds_nothing_and_closes_the_session(api, held, session_id, stripe):
    assert cancel(api, held).json()["refund"]["amount"] == 0
    assert not stripe.requests_to("POST", "/v1/refunds")
    assert stripe.session(session_id)["status"] == "expired"


def test_the_student_does_not_wait_for_stripe_a_worker_asks_for_the_refund(
    api, confirmed, stripe, monkeypatch
):
    queued: list[str] = []
    monkeypatch.setattr(tasks.refunds_send, "delay", queued.append)

    response = cancel(api, confirmed)
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 9000, "currency": "usd"}
    assert queued == [str(confirmed.pk)]
    assert not stripe.requests_to("POST", "/v1/refunds")
    assert Refund.objects.get().status == RefundStatus.PENDING  # owed, not yet asked for

    tasks.refunds_send(queued[0])  # what the worker runs
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
    assert Refund.objects.get().status == RefundStatus.SUCCEEDED


def test_a_worker_closes_the_session_of_a_cancelled_hold(
    api, held, session_id, stripe, monkeypatch
):
    queued: list[str] = []
    monkeypatch.setattr(tasks.abandon_checkout, "delay", queued.append)

    assert cancel(api, held).status_code == 200
    assert stripe.session(session_id)["status"] == "open"
    tasks.abandon_checkout(queued[0])
    assert stripe.session(session_id)["status"] == "expired"
    assert Payment.objects.get().status == PaymentStatus.EXPIRED


def test_with_the_broker_down_the_refund_is_asked_for_in_the_request(
    api, confirmed, stripe, monkeypatch
):
    def broker_down(booking_id: str) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.refunds_send, "delay", broker_down)
    assert cancel(api, confirmed).status_code == 200
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
    assert Refund.objects.get().status == RefundStatus.SUCCEEDED


# --- Stripe trouble -------------------------------------------------------------------------


def test_a_refund_stripe_could_not_take_is_retried_later_with_the_same_key(
    api, confirmed, stripe, frozen, now
):
    stripe.fail(500, times=2)
    assert cancel(api, confirmed).status_code == 200  # the cancellation itself stands
    refund = Refund.objects.get()
    assert (refund.status, refund.stripe_refund_id) == (RefundStatus.PENDING, None)
    assert refund.last_error

    assert services.refunds_retry(now=now) == 0  # too soon: give Stripe a minute
    frozen.shift(timedelta(minutes=5))
    assert refunds_retry() == 1
    attempts = stripe.requests_to("POST", "/v1/refunds")
    assert [a.status for a in attempts] == [500, 500, 200]
    assert {a.idempotency_key for a in attempts} == {refund.idempotency_key}
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.attempts == 2
    assert Payment.objects.get().refunded_amount == 9000
    assert refunds_retry() == 0  # nothing left to do
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 3


def test_a_refund_that_timed_out_but_was_made_is_not_made_twice(
    api, confirmed, stripe, frozen, settings
):
    from .conftest import use_timeout

    use_timeout(settings, 0.3)
    stripe.delay(1, times=2)  # Stripe makes the refund, the answer comes too late
    cancel(api, confirmed)
    assert Refund.objects.get().status == RefundStatus.PENDING
    use_timeout(settings, 5)
    frozen.shift(timedelta(minutes=5))
    refunds_retry()
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.SUCCEEDED
    made = [r for r in stripe.requests_to("POST", "/v1/refunds") if r.status == 200]
    assert len({r.idempotency_key for r in made}) == 1
    assert len(stripe.refunds) == 1


def test_a_refund_stripe_refuses_is_recorded_as_failed(api, confirmed, stripe, frozen):
    stripe.fail(400, message="Charge has already been refunded.", code="charge_already_refunded")
    cancel(api, confirmed)
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.FAILED
    assert "already been refunded" in refund.last_error
    frozen.shift(timedelta(minutes=5))
    assert refunds_retry() == 0
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1


# --- refund events ----------------------------------------------------------------------------


@pytest.fixture
def pending_refund(api, confirmed, stripe) -> Refund:
    stripe.refund_status = "pending"
    cancel(api, confirmed)
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.PENDING and refund.stripe_refund_id
    assert Payment.objects.get().refunded_amount == 0
    return refund


def test_refund_updated_to_succeeded_is_stored(pending_refund, stripe):
    obj = stripe.refund(pending_refund.stripe_refund_id, status="succeeded")
    response = deliver(stripe.event("refund.updated", obj))
    assert response.status_code == 200
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.SUCCEEDED
    assert Payment.objects.get().refunded_amount == 9000


def test_refund_failed_is_stored(pending_refund, stripe):
    obj = stripe.refund(pending_refund.stripe_refund_id, status="failed")
    deliver(stripe.event("refund.failed", obj))
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.FAILED
    assert Payment.objects.get().refunded_amount == 0


def test_a_refund_that_fails_after_succeeding_no_longer_counts(pending_refund, stripe):
    deliver(
        stripe.event(
            "refund.updated", stripe.refund(pending_refund.stripe_refund_id, status="succeeded")
        )
    )
    deliver(
        stripe.event(
            "refund.failed", stripe.refund(pending_refund.stripe_refund_id, status="failed")
        )
    )
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.FAILED
    assert Payment.objects.get().refunded_amount == 0


def test_refund_events_out_of_order_never_move_a_refund_back(pending_refund, stripe):
    stale = stripe.event(
        "refund.updated", {**stripe.refund(pending_refund.stripe_refund_id, status="pending")}
    )
    succeeded = stripe.event(
        "refund.updated", stripe.refund(pending_refund.stripe_refund_id, status="succeeded")
    )
    deliver(succeeded)
    deliver(stale)
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.SUCCEEDED
    assert Payment.objects.get().refunded_amount == 9000


def test_charge_refunded_records_the_refunded_amount(pending_refund, stripe, session_id):
    stripe.refund(pending_refund.stripe_refund_id, status="succeeded")
    response = deliver(stripe.event("charge.refunded", stripe.charge_for(session_id)))
    assert response.status_code == 200
    assert Payment.objects.get().refunded_amount == 9000
    # ...and the refund's own event afterwards does not count it twice.
    deliver(
        stripe.event(
            "refund.updated", stripe.refund(pending_refund.stripe_refund_id, status="succeeded")
        )
    )
    assert Payment.objects.get().refunded_amount == 9000


def test_an_event_for_a_refund_we_never_asked_for_is_answered_200(db, stripe):
    obj = {"id": "re_elsewhere", "object": "refund", "status": "succeeded", "amount": 100}
    response = deliver(stripe.event("refund.updated", obj))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown refund"
