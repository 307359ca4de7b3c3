"""Every write to packages: the tutor's offers, a purchase and its payment, credits
granted, spent on a booking, returned, expired.

Same habits as bookings.services: keyword-only, `now` passed in, safe to repeat. The
purchase row is the ledger's lock: every change to a purchase's credits locks it first
(select_for_update; on SQLite transactions begin IMMEDIATE, which serialises writers
the same way), so two tabs spending the last credit cannot both see it. Stripe is
called after the commit, never inside a transaction.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from bookings import services as booking_services
from bookings import validation
from bookings.errors import ApplicationError, NotFound
from bookings.models import Booking, Offering, Tutor
from payments import services as payment_services
from payments.models import Payment, Provider

from . import notifications, selectors
from .models import MAX_SESSIONS, MAX_VALID_DAYS, Entry, EntryKind, Package, Purchase

logger = logging.getLogger(__name__)


# --- the tutor's packages -----------------------------------------------------------------


def _check_package(
    *, tutor: Tutor, offering: Offering, sessions: int, price_amount: int, valid_days: int
) -> None:
    errors: dict[str, list[str]] = {}
    if offering.tutor_id != tutor.pk:
        errors["offering"] = ["No such session type."]
    if not 1 <= sessions <= MAX_SESSIONS:
        errors["sessions"] = [f"Between 1 and {MAX_SESSIONS} sessions."]
    if not validation.MIN_PRICE_AMOUNT <= price_amount <= validation.MAX_PRICE_AMOUNT:
        errors["price_amount"] = ["Outside what card payments allow."]
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        errors["valid_days"] = [f"Between 1 and {MAX_VALID_DAYS} days."]
    if errors:
        raise ApplicationError("invalid", "Please correct the package.", fields=errors)


def package_create(
    *,
    tutor: Tutor,
    offering: Offering,
    sessions: int,
    price_amount: int,
    valid_days: int,
    active: bool = True,
) -> Package:
    _check_package(
        tutor=tutor,
        offering=offering,
        sessions=sessions,
        price_amount=price_amount,
        valid_days=valid_days,
    )
    with transaction.atomic():
        package = Package.objects.create(
            tutor=tutor,
            offering=offering,
            sessions=sessions,
            price_amount=price_amount,
            currency=offering.currency,
            valid_days=valid_days,
            active=active,
        )
        booking_services.tutor_public_page_changed(tutor_id=tutor.pk)
    return package


def package_update(*, package: Package, **fields: Any) -> Package:
    """Change an offer. Purchases made before keep what they bought (copied on them)."""
    for name, value in fields.items():
        setattr(package, name, value)
    _check_package(
        tutor=package.tutor,
        offering=package.offering,
        sessions=package.sessions,
        price_amount=package.price_amount,
        valid_days=package.valid_days,
    )
    package.currency = package.offering.currency
    with transaction.atomic():
        package.save()
        booking_services.tutor_public_page_changed(tutor_id=package.tutor_id)
    return package


# --- buying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseStart:
    purchase: Purchase
    payment_url: str


def purchase_start(
    *, package_id: int, student_name: str, student_email: str, now: datetime
) -> PurchaseStart:
    """A student buys a package: the purchase and its payment row in one transaction,
    then (after the commit) the checkout they pay at. Nothing is granted until the
    money arrives (purchase_paid)."""
    with transaction.atomic():
        package = (
            Package.objects.select_related("tutor", "offering")
            .filter(pk=package_id, active=True, offering__is_active=True, tutor__is_active=True)
            .first()
        )
        if package is None:
            raise NotFound("No such package.")
        payment = payment_services.purchase_checkout_open(
            amount=package.price_amount, currency=package.currency
        )
        purchase = Purchase.objects.create(
            package=package,
            tutor=package.tutor,
            offering=package.offering,
            payment=payment,
            student_name=student_name.strip(),
            student_email=student_email.strip().lower(),
            sessions=package.sessions,
            price_amount=package.price_amount,
            currency=package.currency,
            valid_days=package.valid_days,
        )
        if payment.provider == Provider.SIMULATED:
            payment.checkout_url = settings.PUBLIC_BASE_URL + reverse(
                "packages:simulated", args=[payment.pk]
            )
            payment.save(update_fields=["checkout_url", "updated_at"])
    if not payment.checkout_url:
        return_url = purchase.url
        payment = payment_services.purchase_checkout_start(
            payment=payment,
            product_name=(
                f"{package.sessions} × {package.offering.title} with {package.tutor.display_name}"
            ),
            description=f"Prepaid sessions, valid {package.valid_days} days",
            customer_email=purchase.student_email,
            success_url=return_url + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=return_url + "?cancelled=1",
            now=now,
        )
    return PurchaseStart(purchase=purchase, payment_url=payment.checkout_url)


def purchase_paid(*, payment: Payment, now: datetime) -> Purchase:
    """The purchase's money arrived in full (payments calls this inside its transaction,
    payment locked): grant the credits and owe the student their package link. A
    second call changes nothing (credits_granted_once)."""
    purchase = Purchase.objects.select_for_update().get(payment=payment)
    if purchase.paid_at is not None:
        return purchase
    purchase.paid_at = now
    purchase.expires_at = now + timedelta(days=purchase.valid_days)
    purchase.save(update_fields=["paid_at", "expires_at"])
    Entry.objects.create(
        purchase=purchase, kind=EntryKind.PURCHASE, credits=purchase.sessions, at=now
    )
    notifications.link_owed(purchase)
    return purchase


def purchase_refresh(*, purchase: Purchase, now: datetime) -> None:
    """The student is back from Checkout before the webhook: ask Stripe now."""
    payment = purchase.payment
    payment_services.payment_refresh(payment=payment, now=now)


# --- spending -----------------------------------------------------------------------------


def purchase_book(
    *,
    purchase_id: Any,
    slot_id: int,
    now: datetime,
    notes: str = "",
    student_timezone: str = "",
    client: str = "",
) -> Booking:
    """Book a slot with one of the purchase's credits: held and confirmed at once.

    One transaction: the purchase is locked, its balance read, the booking made by the
    booking core's own hold (its locks, limits and availability decision) and
    confirmed, and the spend recorded. Any refusal rolls all of it back.
    """
    with transaction.atomic():
        purchase = (
            Purchase.objects.select_for_update().select_related("offering").get(pk=purchase_id)
        )
        if purchase.paid_at is None:
            raise ApplicationError(
                "not_paid", "This package has not been paid for yet.", status=409
            )
        if purchase.expired(now):
            raise ApplicationError(
                "package_expired", "This package's credits have expired.", status=410
            )
        if selectors.balance(purchase, now=now) < 1:
            raise ApplicationError("no_credit", "This package has no credit left.", status=409)
        offering = purchase.offering
        booking = booking_services.booking_hold_prepaid(
            slot_id=slot_id,
            mode=offering.mode,
            student_name=purchase.student_name,
            student_email=purchase.student_email,
            now=now,
            notes=notes,
            student_timezone=student_timezone,
            client=client,
            reason="paid with a package credit",
            data={"package_purchase": str(purchase.pk)},
        )
        if booking.tutor_id != purchase.tutor_id or booking.offering_id != offering.pk:
            # Rolls the booking back with everything else.
            raise ApplicationError(
                "invalid",
                "This package is for another kind of session.",
                fields={"slot": [f"Pick a slot offering {offering.title}."]},
            )
        Entry.objects.create(
            purchase=purchase, kind=EntryKind.SPEND, credits=-1, booking=booking, at=now
        )
    return booking


def credit_return(*, booking: Booking, refundable: bool, now: datetime) -> bool:
    """Inside a cancellation's transaction: was `booking` paid with a credit? If so and
    the policy refunds (`refundable`), the credit goes back (once: the return points at
    its spend, a OneToOne). Outside the policy the credit stays spent."""
    spend = Entry.objects.filter(kind=EntryKind.SPEND, booking=booking).first()
    if spend is None:
        return False
    if refundable:
        list(Purchase.objects.select_for_update().filter(pk=spend.purchase_id).values_list("pk"))
        if not Entry.objects.filter(reverses=spend).exists():
            Entry.objects.create(
                purchase_id=spend.purchase_id,
                kind=EntryKind.RETURN,
                credits=1,
                booking=booking,
                reverses=spend,
                at=now,
            )
    return True


def purchase_expire(*, purchase_id: Any, now: datetime) -> bool:
    """Close the ledger of a purchase past its validity: an entry takes what was left.
    True if this call wrote it."""
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
        if not purchase.expired(now) or purchase.entries.filter(kind=EntryKind.EXPIRY).exists():
            return False
        left = max(selectors.ledger_sum(purchase), 0)
        Entry.objects.create(purchase=purchase, kind=EntryKind.EXPIRY, credits=-left, at=now)
    return True


def purchases_expire(*, now: datetime) -> int:
    """The sweeper: every purchase past its validity gets its expiry entry. Safe to repeat."""
    due = (
        Purchase.objects.filter(expires_at__lte=now)
        .exclude(entries__kind=EntryKind.EXPIRY)
        .values_list("pk", flat=True)
    )
    return sum(purchase_expire(purchase_id=pk, now=now) for pk in list(due[:500]))
