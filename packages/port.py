"""packages plugged into the flows that do not import it (dependencies point one way:
packages → payments → bookings): settings.BOOKINGS_PAYMENT_PORT and
settings.PAYMENTS_PURCHASE_PORT name these classes."""

from datetime import datetime

from bookings.models import Booking
from payments.models import Payment
from payments.port import PaymentsPort as StripePaymentsPort

from . import selectors, services


class PaymentsPort(StripePaymentsPort):
    """The booking core's payment port: Stripe's, plus bookings paid with a credit."""

    def prepaid_cancelled(self, booking: Booking, *, refundable: bool, now: datetime) -> bool:
        return services.credit_return(booking=booking, refundable=refundable, now=now)

    def prepaid(self, booking: Booking) -> bool:
        return selectors.paid_with_credit(booking)


class PurchasesPort:
    """payments' purchase port: a package's money arrived."""

    def purchase_paid(self, payment: Payment, *, now: datetime) -> None:
        services.purchase_paid(payment=payment, now=now)
