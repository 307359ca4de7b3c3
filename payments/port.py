"""The booking core's payment port (bookings/payment_port.py), implemented with Stripe."""

import logging
from datetime import datetime

from celery import Task
from django.utils import timezone
from kombu.exceptions import OperationalError

from bookings.models import Booking, BookingSeries

from . import services, tasks
from .models import Payment, PaymentStatus

logger = logging.getLogger(__name__)


def _in_worker(task: Task, booking: Booking) -> None:
    """Hand a Stripe call to a Celery worker, so the student's request does not wait for
    Stripe. The services call the port after their transaction has committed, so the
    worker sees what they wrote (a worker that still finds nothing leaves the refund to
    refunds_retry). With the broker down, make the call here rather than not at all."""
    try:
        task.delay(str(booking.pk))
    except OperationalError:
        logger.warning("broker unavailable: %s for booking %s runs inline", task.name, booking.pk)
        task(str(booking.pk))


class PaymentsPort:
    def open_checkout(self, booking: Booking) -> str | None:
        return services.checkout_open(booking=booking).checkout_url or None

    def start_checkout(self, booking: Booking) -> str:
        return services.checkout_start(booking=booking, now=timezone.now()).checkout_url

    def open_series_checkout(self, series: BookingSeries, bookings: list[Booking]) -> str | None:
        return (
            services.checkout_open(booking=bookings[0], series_bookings=bookings).checkout_url
            or None
        )

    def start_series_checkout(self, series: BookingSeries) -> str:
        payment = Payment.objects.checkouts().select_related("booking").get(series=series)
        assert payment.booking is not None  # noqa: S101 - a series' payment has its first session
        return services.checkout_start(booking=payment.booking, now=timezone.now()).checkout_url

    def checkout_url(self, booking: Booking) -> str | None:
        payments = Payment.objects.checkouts().filter(status=PaymentStatus.OPEN)
        if booking.series_id:
            payment = payments.filter(series_id=booking.series_id).first()
        else:
            payment = payments.filter(booking=booking).first()
        return payment.checkout_url if payment and payment.checkout_url else None

    def abandon_checkout(self, booking: Booking) -> None:
        _in_worker(tasks.abandon_checkout, booking)

    def refund_owe(self, booking: Booking, *, amount: int, reason: str) -> None:
        services.refund_owe_for_booking(booking=booking, amount=amount, reason=reason)

    def prepaid_cancelled(self, booking: Booking, *, refundable: bool, now: datetime) -> bool:
        return False  # packages.port.PaymentsPort knows prepaid credits

    def prepaid(self, booking: Booking) -> bool:
        return False

    def refunds_send(self, booking: Booking) -> None:
        _in_worker(tasks.refunds_send, booking)
