"""The package link email: owed when the money arrives, sent once.

The purchase row is its own outbox entry: `link_sent_at` says it went. A sender claims
it with a conditional update (`link_claimed_at` empty, or a claim older than LEASE: a
sender that died), so two workers never both send it; a failed send gives the claim
back and the task retries. The hourly sweep (packages.tasks.expire_purchases) hands
out links still unsent, so a lost task loses no email.
"""

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError

from bookings.money import format_money
from bookings.queueing import registered

from .models import Purchase

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)


def link_owed(purchase: Purchase) -> None:
    """Inside the transaction that paid the purchase: send the link once it commits."""
    purchase_id = str(purchase.pk)
    transaction.on_commit(lambda: enqueue(purchase_id))


def enqueue(purchase_id: str) -> None:
    task = registered("packages.tasks.send_link")
    try:
        task.delay(purchase_id)
    except OperationalError:
        logger.warning("broker unavailable: package link %s waits for the sweep", purchase_id)


def _context(purchase: Purchase, *, now: datetime) -> dict[str, Any]:
    return {
        "purchase": purchase,
        "tutor": purchase.tutor,
        "offering": purchase.offering,
        "price": format_money(purchase.price_amount, purchase.currency),
        "link": purchase.url,
        "expires_at": purchase.expires_at,
    }


def build_message(purchase: Purchase, *, now: datetime) -> EmailMultiAlternatives:
    context = _context(purchase, now=now)
    message = EmailMultiAlternatives(
        subject=f"Your package with {purchase.tutor.display_name}: {purchase.sessions} sessions",
        body=render_to_string("packages/emails/link.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[purchase.student_email],
        reply_to=[purchase.tutor.email],
    )
    message.attach_alternative(render_to_string("packages/emails/link.html", context), "text/html")
    return message


def link_send(*, purchase_id: str, now: datetime) -> str:
    """Send the package link if this caller wins the claim. Returns what happened;
    raises the mail server's error (the task retries) after giving the claim back."""
    mine = Purchase.objects.filter(pk=purchase_id, paid_at__isnull=False, link_sent_at__isnull=True)
    claimed = mine.filter(
        Q(link_claimed_at__isnull=True) | Q(link_claimed_at__lt=now - LEASE)
    ).update(link_claimed_at=now)
    if not claimed:
        return "not claimed"
    purchase = Purchase.objects.select_related("tutor", "offering").get(pk=purchase_id)
    try:
        message = build_message(purchase, now=now)
        message.connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
        message.send()
    except (OSError, smtplib.SMTPException):
        mine.update(link_claimed_at=None)
        raise
    mine.update(link_sent_at=now)
    logger.info("package link for purchase %s sent", purchase_id)
    return "sent"


def links_unsent(*, now: datetime) -> list[str]:
    """Paid purchases whose link has not gone after a while (a lost task)."""
    return [
        str(pk)
        for pk in Purchase.objects.filter(
            paid_at__lte=now - LEASE, link_sent_at__isnull=True
        ).values_list("pk", flat=True)[:200]
    ]
