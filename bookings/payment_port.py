"""What the booking core needs from a payment provider, without importing one.

Dependencies point one way: `payments` imports `bookings` (models and services), never
the reverse. The booking flows that need money moved (hold → checkout, cancel → refund)
call the provider through this port; settings.BOOKINGS_PAYMENT_PORT names the class.
Methods that may make slow network calls are called outside any database transaction;
the two that only write rows (open_checkout, refund_owe) are called inside the
transaction of the change they belong to, so the record exists exactly when it does.
"""

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .models import Booking, BookingSeries


class PaymentPort(Protocol):
    def open_checkout(self, booking: "Booking") -> str | None:
        """Inside the hold's transaction (no network): record the payment the hold
        expects. Returns the URL to pay at when it needs no network call, else None.

        Raises bookings.errors.PaymentUnavailable when payments are not configured.
        """
        ...

    def start_checkout(self, booking: "Booking") -> str:
        """Open a checkout for a fresh hold and return the URL the student pays at.

        Raises bookings.errors.PaymentUnavailable when the provider cannot be reached
        or refuses; the caller then releases the hold.
        """
        ...

    def open_series_checkout(
        self, series: "BookingSeries", bookings: "list[Booking]"
    ) -> str | None:
        """As open_checkout, for a weekly series: one payment for all its sessions."""
        ...

    def start_series_checkout(self, series: "BookingSeries") -> str:
        """As start_checkout, for the one checkout of a weekly series."""
        ...

    def checkout_url(self, booking: "Booking") -> str | None:
        """The URL of the booking's open checkout (a series session's: the series'),
        if it still has one."""
        ...

    def abandon_checkout(self, booking: "Booking") -> None:
        """The hold is gone (expired, cancelled): stop the checkout from taking money."""
        ...

    def refund_owe(self, booking: "Booking", *, amount: int, reason: str) -> None:
        """Inside the cancellation's transaction (no network): record that `amount`
        (minor units) goes back, so a crash before refunds_send() loses nothing."""
        ...

    def prepaid_cancelled(self, booking: "Booking", *, refundable: bool, now: datetime) -> bool:
        """Inside the cancellation's transaction (no network): if the booking was paid
        in advance (a package credit), give the credit back when the policy would refund
        (`refundable`) and answer True: then no money goes back."""
        ...

    def prepaid(self, booking: "Booking") -> bool:
        """Was the booking paid in advance (a package credit)? Then cancelling it
        gives the credit back, or keeps it spent, and never moves money."""
        ...

    def refunds_send(self, booking: "Booking") -> None:
        """After the commit: pay out what the booking is owed. Safe to repeat."""
        ...


@cache
def payment_port() -> PaymentPort:
    port: PaymentPort = import_string(settings.BOOKINGS_PAYMENT_PORT)()
    return port
