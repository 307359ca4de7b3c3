"""Money records. Never deleted: the admin can read them but not remove them."""

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from bookings.models import Booking, BookingSeries


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    SIMULATED = "simulated", "Simulated (development only)"


class PaymentStatus(models.TextChoices):
    OPEN = "open", "Checkout open"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Checkout expired"
    # Money arrived but could not confirm the booking (not the full price, another
    # currency, or not the booking's own checkout): it is refunded in full.
    REFUSED = "refused", "Refused and refunded"


class PaymentKind(models.TextChoices):
    CHECKOUT = "checkout", "The booking's own checkout"
    # A paid checkout session that names this booking but is not the one we opened for
    # it: recorded so its refund has a row to hang on, never able to confirm.
    STRAY = "stray", "Stray money (not the booking's checkout)"
    # A checkout for something bought ahead of any booking (a prepaid package: see
    # payments/purchase_port.py): no booking; what it buys is granted by the port.
    PURCHASE = "purchase", "A prepaid purchase's checkout"


class PaymentQuerySet(models.QuerySet["Payment"]):
    def checkouts(self) -> "PaymentQuerySet":
        """The bookings' own checkouts (one per booking), without stray money."""
        return self.filter(kind=PaymentKind.CHECKOUT)


class Payment(models.Model):
    """One checkout for one booking, and what became of its money.

    `amount`/`currency` are what the booking costs (what we asked for); the `received`
    pair is what the provider says was actually paid. Only the booking's own checkout
    (kind=checkout), paid in full in its currency, confirms it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null only for a purchase (kind=purchase), which pays for no booking.
    booking = models.ForeignKey(
        Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    # A weekly series' one checkout pays for all its sessions: `booking` is then the
    # series' first session (its checkout, for the one-per-booking rule) and `amount`
    # the price of every session held.
    series = models.ForeignKey(
        BookingSeries,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    kind = models.CharField(
        max_length=16, choices=PaymentKind.choices, default=PaymentKind.CHECKOUT
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    amount = models.PositiveIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    received_amount = models.PositiveIntegerField(null=True, blank=True)
    received_currency = models.CharField(max_length=3, blank=True)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.OPEN
    )
    checkout_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    refunded_amount = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="payment_open_by_created",
                condition=Q(status="open"),
            )
        ]
        constraints = [
            # One checkout per booking: the session is created with an idempotency key
            # derived from the booking, so a retry finds the same session.
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(kind="checkout"),
                name="one_checkout_per_booking",
            ),
            models.CheckConstraint(
                name="payment_has_booking_unless_purchase",
                condition=Q(kind="purchase", booking__isnull=True)
                | (~Q(kind="purchase") & Q(booking__isnull=False)),
            ),
            models.CheckConstraint(
                name="payment_refund_not_above_received",
                condition=Q(refunded_amount__lte=Coalesce(F("received_amount"), F("amount"))),
            ),
            # Money that confirmed a booking is exactly its price in its currency.
            models.CheckConstraint(
                name="paid_payment_is_in_full",
                condition=~Q(status="paid")
                | (
                    Q(received_amount__isnull=True)
                    | (Q(received_amount=F("amount")) & Q(received_currency=F("currency")))
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount / 100:.2f} {self.currency.upper()} · {self.status}"

    @property
    def paid_amount(self) -> int:
        """What came in: refunds can give back at most this."""
        return self.amount if self.received_amount is None else self.received_amount


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    # The session the money goes back for: a series' payment is refunded session by
    # session (NULL for refunds of a whole payment: refused or late money).
    booking = models.ForeignKey(
        Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = models.PositiveIntegerField()
    reason = models.CharField(max_length=120)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    # Sent as Stripe's Idempotency-Key: the same refund asked twice is made once.
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="refund_amount_positive", condition=Q(amount__gt=0))
        ]

    def __str__(self) -> str:
        return f"refund {self.amount / 100:.2f} {self.payment.currency.upper()} · {self.status}"


class StripeEvent(models.Model):
    """Every webhook event, once: its id is unique, so a replay is recognised."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
