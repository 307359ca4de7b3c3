"""The booking core's payment port (bookings/payment_port.py), implemented with Stripe."""

from django.utils import timezone

from bookings.models import Booking

from . import services
from .models import Payment, PaymentStatus


class PaymentsPort:
    def open_checkout(self, booking: Booking) -> str | None:
        return services.checkout_open(booking=booking).checkout_url or None

    def start_checkout(self, booking: Booking) -> str:
        return services.checkout_start(booking=booking, now=timezone.now()).checkout_url

    def checkout_url(self, booking: Booking) -> str | None:
        payment = Payment.objects.filter(booking=booking, status=PaymentStatus.OPEN).first()
        return payment.checkout_url if payment and payment.checkout_url else None

    def abandon_checkout(self, booking: Booking) -> None:
        services.checkout_abandon(booking=booking, now=timezone.now())

    def owe_refund(self, booking: Booking, *, amount: int, reason: str) -> None:
        services.booking_refund_owe(booking=booking, amount=amount, reason=reason)

    def send_refunds(self, booking: Booking) -> None:
        services.booking_refunds_send(booking=booking)
