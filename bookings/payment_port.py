"""What the booking core needs from a payment provider, without importing one.

Dependencies point one way: `payments` imports `bookings` (models and services), never
the reverse. The booking flows that need money moved (hold → checkout, cancel → refund)
call the provider through this port; settings.BOOKINGS_PAYMENT_PORT names the class.
Every method is called outside any database transaction: they may be slow network calls.
"""

from functools import cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .models import Booking


class PaymentPort(Protocol):
    def start_checkout(self, booking: "Booking") -> str:
        """Open a checkout for a fresh hold and return the URL the student pays at.

        Raises bookings.errors.PaymentUnavailable when the provider cannot be reached
        or refuses; the caller then releases the hold.
        """
        ...

    def checkout_url(self, booking: "Booking") -> str | None:
        """The URL of the booking's open checkout, if it still has one."""
        ...

    def abandon_checkout(self, booking: "Booking") -> None:
        """The hold is gone (expired, cancelled): stop the checkout from taking money."""
        ...

    def refund(self, booking: "Booking", *, amount: int, reason: str) -> None:
        """Give back `amount` (minor units) of what the student paid. Safe to repeat."""
        ...


@cache
def payment_port() -> PaymentPort:
    port: PaymentPort = import_string(settings.BOOKINGS_PAYMENT_PORT)()
    return port
