"""Thin tasks: each calls one service with the current time."""

from celery import shared_task
from django.utils import timezone

from . import housekeeping, services


@shared_task(name="payments.tasks.reconcile")
def reconcile() -> int:
    return services.payments_reconcile(now=timezone.now())


@shared_task(name="payments.tasks.refunds_retry")
def refunds_retry() -> int:
    return services.refunds_retry(now=timezone.now())


@shared_task(name="payments.tasks.refunds_send")
def refunds_send(booking_id: str) -> None:
    services.refunds_send(booking_id=booking_id)


@shared_task(name="payments.tasks.abandon_checkout")
def abandon_checkout(booking_id: str) -> None:
    services.checkout_abandon(booking_id=booking_id, now=timezone.now())


# Hourly, with a time budget, like bookings.tasks.prune_notifications.
@shared_task(name="payments.tasks.prune_stripe_events")
def prune_stripe_events() -> int:
    return housekeeping.stripe_events_prune(now=timezone.now(), budget_seconds=60)
