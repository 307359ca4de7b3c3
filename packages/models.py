"""Prepaid packages: what a tutor sells ("5 sessions for $400, valid 6 months"), who
bought one, and the credits, kept as a ledger.

A purchase's credits are never a counter on a row: they are the sum of its entries
(+N when paid, -1 per booking, +1 when a cancellation within the policy returns one,
what was left when it expired). Entries are only ever added, and the database keeps
the ledger honest: a booking spends at most once, a return points at the spend it
reverses (so it cannot come first, or twice), credits are granted once per purchase.
"""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from bookings import tokens, validation
from bookings.models import Booking, Offering, Tutor
from payments.models import Payment

MAX_SESSIONS = 50
MAX_VALID_DAYS = 3 * 366


class Package(models.Model):
    """A tutor's offer of `sessions` sessions of one offering, paid at once."""

    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="packages")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="packages")
    sessions = models.PositiveSmallIntegerField(help_text="Credits a purchase grants.")
    price_amount = models.PositiveIntegerField(help_text="Minor units, for all the sessions.")
    currency = models.CharField(max_length=3, help_text="The offering's currency.")
    valid_days = models.PositiveSmallIntegerField(
        default=183, help_text="Credits can be used this many days after the purchase."
    )
    active = models.BooleanField(default=True, help_text="Offered to students.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tutor", "offering", "sessions"]
        constraints = [
            models.CheckConstraint(
                name="package_sessions_in_range",
                condition=Q(sessions__gte=1) & Q(sessions__lte=MAX_SESSIONS),
            ),
            models.CheckConstraint(
                name="package_price_in_range",
                condition=Q(price_amount__gte=validation.MIN_PRICE_AMOUNT)
                & Q(price_amount__lte=validation.MAX_PRICE_AMOUNT),
            ),
            models.CheckConstraint(
                name="package_valid_days_in_range",
                condition=Q(valid_days__gte=1) & Q(valid_days__lte=MAX_VALID_DAYS),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.sessions} × {self.offering.title} for "
            f"{self.price_amount / 100:.2f} {self.currency.upper()}"
        )


class Purchase(models.Model):
    """One student's purchase of a package: what was bought (copied, so a later change
    to the package changes nothing bought), its payment, and its private link."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="purchases")
    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="package_purchases")
    offering = models.ForeignKey(
        Offering, on_delete=models.PROTECT, related_name="package_purchases"
    )
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="package_purchase"
    )
    student_name = models.CharField(max_length=validation.NAME_MAX_LENGTH)
    student_email = models.EmailField()
    sessions = models.PositiveSmallIntegerField()
    price_amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    valid_days = models.PositiveSmallIntegerField()
    # The package link's key (bookings/tokens.py, purpose "package"): not a secret by
    # itself; the link is the key signed under SECRET_KEY.
    link_key = models.CharField(max_length=32, unique=True, default=tokens.new_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The link email: claimed by one sender (conditional update), then marked sent.
    link_claimed_at = models.DateTimeField(null=True, blank=True)
    link_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="purchase_paid_has_expiry",
                condition=Q(paid_at__isnull=True, expires_at__isnull=True)
                | Q(paid_at__isnull=False, expires_at__gt=models.F("paid_at")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sessions} × {self.offering.title} for {self.student_name}"

    @property
    def token(self) -> str:
        return tokens.token_for("package", self.link_key)

    @property
    def path(self) -> str:
        return reverse("packages:purchase", args=[self.token])

    @property
    def url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.path

    @property
    def api_path(self) -> str:
        return reverse("packages-api:purchase", args=[self.token])

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Bought"
    SPEND = "spend", "Booked a session"
    RETURN = "return", "Cancelled in time: credit returned"
    EXPIRY = "expiry", "Expired"


class Entry(models.Model):
    """One line of a purchase's ledger. Added, never changed or removed."""

    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    credits = models.SmallIntegerField()
    booking = models.ForeignKey(
        Booking,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="package_entries",
    )
    # A return names the spend it gives back: one return per spend, never before it.
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(
                name="entry_shape_per_kind",
                condition=Q(
                    kind="purchase",
                    credits__gt=0,
                    booking__isnull=True,
                    reverses__isnull=True,
                )
                | Q(kind="spend", credits=-1, booking__isnull=False, reverses__isnull=True)
                | Q(kind="return", credits=1, booking__isnull=False, reverses__isnull=False)
                | Q(kind="expiry", credits__lte=0, booking__isnull=True, reverses__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["purchase"], condition=Q(kind="purchase"), name="credits_granted_once"
            ),
            models.UniqueConstraint(
                fields=["booking"], condition=Q(kind="spend"), name="booking_spends_once"
            ),
            models.UniqueConstraint(
                fields=["purchase"], condition=Q(kind="expiry"), name="purchase_expires_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.credits:+d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Ledger entries are never changed: add another entry.")
        super().save(*args, **kwargs)
