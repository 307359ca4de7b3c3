"""Reads: a purchase behind its link, its balance and history, a tutor's packages."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Sum

from bookings import tokens
from bookings.errors import NotFound
from bookings.models import Booking, Tutor

from .models import Entry, EntryKind, Package, Purchase


def purchase_by_token(token: str) -> Purchase:
    key = tokens.key_of("package", token)
    purchase = (
        Purchase.objects.select_related("tutor", "offering", "package").filter(link_key=key).first()
        if key
        else None
    )
    if purchase is None:
        raise NotFound("No such package.")
    return purchase


def paid_with_credit(booking: Booking) -> bool:
    return Entry.objects.filter(kind=EntryKind.SPEND, booking=booking).exists()


def ledger_sum(purchase: Purchase) -> int:
    return Entry.objects.filter(purchase=purchase).aggregate(total=Sum("credits"))["total"] or 0


def balance(purchase: Purchase, *, now: datetime) -> int:
    """Credits that can still be spent: the ledger's sum, none before the money came
    or once the purchase's validity is over."""
    if purchase.paid_at is None or purchase.expired(now):
        return 0
    return max(ledger_sum(purchase), 0)


def history(purchase: Purchase) -> QuerySet[Entry]:
    return Entry.objects.filter(purchase=purchase).select_related("booking", "booking__slot")


def packages_on_sale(tutor: Tutor) -> QuerySet[Package]:
    return Package.objects.filter(
        tutor=tutor, active=True, offering__is_active=True
    ).select_related("offering")


def tutor_packages(tutor: Tutor) -> QuerySet[Package]:
    return Package.objects.filter(tutor=tutor).select_related("offering")


@dataclass(frozen=True)
class PurchaseRow:
    purchase: Purchase
    balance: int
    expired: bool


def tutor_purchases(tutor: Tutor, *, now: datetime, limit: int = 200) -> list[PurchaseRow]:
    """The tutor's paid purchases, newest first, each with its balance."""
    purchases = (
        Purchase.objects.filter(tutor=tutor, paid_at__isnull=False)
        .select_related("offering")
        .annotate(total=Sum("entries__credits"))
        .order_by("-paid_at")[:limit]
    )
    return [
        PurchaseRow(
            purchase=p,
            balance=0 if p.expired(now) else max(p.total or 0, 0),
            expired=p.expired(now),
        )
        for p in purchases
    ]
