"""Money that arrives for a hold the student already cancelled goes back, and they are told."""

import pytest
from django.core import mail

from bookings import notifications
from bookings.models import Booking, BookingStatus
from payments import services
from payments.models import Payment, PaymentStatus, Refund
from tests.conftest import hold

pytestmark = pytest.mark.django_db


def test_a_payment_for_a_cancelled_hold_is_refunded_and_explained(
    api, frozen, slot, now, monkeypatch
):
    monkeypatch.setattr(
        notifications.transaction, "on_commit", lambda fn, using=None, robust=False: fn()
    )
    assert hold(api, slot).status_code == 201
    booking = Booking.objects.get()
    assert api.post(f"/api/bookings/{booking.manage_token}/cancel/").status_code == 200
    mail.outbox.clear()

    settlement = services.payment_succeeded(
        payment_id=Payment.objects.get().pk,
        now=now,
        received=services.Money(9000, "usd"),
        source="test",
    )

    assert settlement.outcome == "refunded_late"
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert booking.refund_amount == 9000
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (9000, "succeeded")
    assert Payment.objects.get().status == PaymentStatus.PAID
    (message,) = mail.outbox
    assert message.to == ["sam@example.com"]
    assert "the booking had been cancelled" in message.body
    assert "$90.00" in message.body
    body = api.get(f"/api/bookings/{booking.manage_token}/").json()
    assert body["refund"] == {"amount": 9000, "currency": "usd"}
