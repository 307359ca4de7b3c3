"""Thin tasks: each loads what it needs by id and calls one service with the current time.

Dependencies point one way: this module imports the services it calls, and nothing in
bookings imports it back. The outbox queues deliver_notification by its name
(bookings/queueing.py); beat names the periodic tasks in settings.CELERY_BEAT_SCHEDULE.
"""

from celery import shared_task
from django.utils import timezone

from . import housekeeping, notifications, services, time_requests


@shared_task(name="bookings.tasks.expire_holds")
def expire_holds() -> int:
    return services.bookings_expire_holds(now=timezone.now())


@shared_task(name="bookings.tasks.materialise_slots")
def materialise_slots() -> int:
    return services.tutors_materialise(now=timezone.now())


# acks_late + reject_on_worker_lost: a worker killed mid-send does not lose the message;
# the outbox row's claim keeps the redelivered task from sending it twice.
@shared_task(
    name="bookings.tasks.deliver_notification",
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliver_notification(notification_id: int) -> str:
    outcome = notifications.deliver(notification_id, now=timezone.now())
    if outcome == "retry":
        notifications.schedule_retry(notification_id)
    return outcome


@shared_task(name="bookings.tasks.send_due_notifications", acks_late=True)
def send_due_notifications() -> dict[str, int]:
    return notifications.sweep(now=timezone.now())


# Hourly: each run has only the last hour's worth of rows to forget, well inside the
# task's time limit; a backlog (the first run, a long outage) drains over a few runs.
@shared_task(name="bookings.tasks.prune_notifications")
def prune_notifications() -> int:
    return housekeeping.notifications_prune(now=timezone.now(), budget_seconds=60)


# --- requested times (bookings/time_requests.py) ---


@shared_task(name="bookings.tasks.expire_time_requests")
def expire_time_requests() -> int:
    return time_requests.time_requests_expire(now=timezone.now())


@shared_task(
    name="bookings.tasks.deliver_request_email", acks_late=True, reject_on_worker_lost=True
)
def deliver_request_email(email_id: int) -> str:
    return time_requests.deliver(email_id, now=timezone.now())


@shared_task(name="bookings.tasks.send_due_request_emails", acks_late=True)
def send_due_request_emails() -> dict[str, int]:
    return time_requests.emails_sweep(now=timezone.now())
