"""`python manage.py prune`: what the hourly prune tasks do, at once and to the end.

It lives in payments because it prunes both apps' tables, and dependencies point one
way, payments → bookings (README, Architecture): bookings cannot name StripeEvent.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from bookings.housekeeping import BATCH_SIZE, notifications_prune
from payments.housekeeping import stripe_events_prune


class Command(BaseCommand):
    help = (
        "Delete Stripe webhook events and sent or void email outbox rows older than "
        "RETENTION_DAYS. Never bookings, payments, refunds, status logs or emails still owed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        batch_size = options["batch_size"]
        events = stripe_events_prune(now=now, batch_size=batch_size)
        notifications = notifications_prune(now=now, batch_size=batch_size)
        self.stdout.write(
            f"Deleted {events} Stripe events and {notifications} outbox rows older than "
            f"{settings.RETENTION_DAYS} days."
        )
