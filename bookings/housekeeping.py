"""Forgetting what no longer needs remembering: the outbox rows of emails long finished.

Only Notification rows go, and only those done with: sent, or void (no longer owed),
longer ago than settings.RETENTION_DAYS. Rows still owed or being sent (pending,
sending) stay whatever their age, and so do failed ones (the admin shows them until
someone looks). Bookings, their status log, payments and refunds are never deleted.

Deletes go in small batches, each its own short transaction, so a large backlog never
holds a long lock on the outbox the minute sweep works on. Each batch locks the rows
it takes and skips rows another run has locked (PostgreSQL; SQLite serialises writers
anyway), so two runs at once share the work, and a second run finds nothing to do.
"""

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from .models import Notification, NotificationState

BATCH_SIZE = 1000


def retention_cutoff(*, now: datetime) -> datetime:
    """Anything finished before this moment is old enough to forget."""
    return now - timedelta(days=settings.RETENTION_DAYS)


def delete_in_batches(
    rows: QuerySet, *, batch_size: int = BATCH_SIZE, budget_seconds: float | None = None
) -> int:
    """Delete `rows` a batch at a time; returns how many went.

    With a budget, stops after the batch that used it up: the next run carries on.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                rows.select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                return deleted
            # The same conditions again: the rows are locked, so they still hold.
            count, _ = rows.filter(pk__in=batch).delete()
        deleted += count
        if deadline is not None and time.monotonic() > deadline:
            return deleted


def notifications_prune(
    *, now: datetime, batch_size: int = BATCH_SIZE, budget_seconds: float | None = None
) -> int:
    """Delete the sent and void outbox rows older than the retention period.

    A sent row's age is when it was sent; a void row's is when it was due (a reminder
    voided by a cancellation waits until its own time has long passed too).
    """
    cutoff = retention_cutoff(now=now)
    finished = Q(state=NotificationState.SENT, sent_at__lt=cutoff) | Q(
        state=NotificationState.VOID, due_at__lt=cutoff, created_at__lt=cutoff
    )
    return delete_in_batches(
        Notification.objects.filter(finished),
        batch_size=batch_size,
        budget_seconds=budget_seconds,
    )
