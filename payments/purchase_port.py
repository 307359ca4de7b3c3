"""What payments needs from whatever sells things ahead of a booking (prepaid packages),
without importing it.

Dependencies point one way: packages → payments → bookings. A purchase's payment
(kind=purchase) has no booking; when its money arrives in full, payment_succeeded()
hands it to this port inside its own transaction, and the seller grants what was
bought there. settings.PAYMENTS_PURCHASE_PORT names the class.
"""

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .models import Payment


class PurchasePort(Protocol):
    def purchase_paid(self, payment: "Payment", *, now: datetime) -> None:
        """Inside the payment's transaction (no network): grant what `payment` bought.
        Called once per payment (the payment row is locked and was not paid before)."""
        ...


@cache
def purchase_port() -> PurchasePort:
    port: PurchasePort = import_string(settings.PAYMENTS_PURCHASE_PORT)()
    return port
