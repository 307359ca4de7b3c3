"""Forgetting Stripe webhook events older than settings.RETENTION_DAYS.

A StripeEvent row exists so that a redelivered event is recognised; Stripe retries an
event for three days at most, so after the retention period the row only takes space
(its payload is kept for reading in the admin until then). Payments and refunds are
money records and are never deleted. Batches as in bookings.housekeeping.
"""

from datetime import datetime

from bookings.housekeeping import BATCH_SIZE, delete_in_batches, retention_cutoff

from .models import StripeEvent


def stripe_events_prune(
    *, now: datetime, batch_size: int = BATCH_SIZE, budget_seconds: float | None = None
) -> int:
    """Delete the webhook events received before the retention period."""
    return delete_in_batches(
        StripeEvent.objects.filter(received_at__lt=retention_cutoff(now=now)),
        batch_size=batch_size,
        budget_seconds=budget_seconds,
    )
