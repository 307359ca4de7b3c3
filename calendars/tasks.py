"""Thin tasks: each loads what it needs by id and calls one service with the current time.

Beat runs sync_due every minute (settings.CELERY_BEAT_SCHEDULE); each source is synced
by its own task, so one slow calendar holds up no other and stays inside the task's
time limit. Services queue these tasks by name (bookings.queueing.registered).
"""

from typing import Any

from celery import shared_task
from django.utils import timezone

from bookings.queueing import registered

from . import services


@shared_task(name="calendars.tasks.sync_due")
def sync_due() -> dict[str, int]:
    now = timezone.now()
    due = services.sources_due(now=now)
    for source_id in due:
        registered("calendars.tasks.sync_source").delay(source_id)
    notices = services.stop_notices_due()
    for source_id in notices:
        registered("calendars.tasks.send_stop_notice").delay(source_id)
    return {"queued": len(due), "stop_notices": len(notices)}


@shared_task(name="calendars.tasks.sync_source", acks_late=True)
def sync_source(source_id: int, force: bool = False) -> dict[str, Any]:
    result = services.source_sync(source_id=source_id, now=timezone.now(), force=force)
    return {"outcome": result.outcome, "busy": result.busy, "error": result.error}


@shared_task(name="calendars.tasks.send_stop_notice", acks_late=True)
def send_stop_notice(source_id: int) -> bool:
    return services.stop_notice_send(source_id=source_id, now=timezone.now())
