"""Thin tasks: each loads what it needs by id and calls one service with the current time."""

from celery import shared_task
from django.utils import timezone

from . import notifications, services


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
