"""Thin tasks: load by id, call a service."""

import smtplib

from celery import shared_task
from django.utils import timezone

from . import notifications, services


@shared_task(
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
    soft_time_limit=60,
    time_limit=90,
)
def send_link(purchase_id: str) -> str:
    return notifications.link_send(purchase_id=purchase_id, now=timezone.now())


@shared_task(soft_time_limit=240, time_limit=300)
def expire_purchases() -> int:
    now = timezone.now()
    for purchase_id in notifications.links_unsent(now=now):
        notifications.enqueue(purchase_id)
    return services.purchases_expire(now=now)
