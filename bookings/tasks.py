"""Thin tasks: each calls one service with the current time."""

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="bookings.tasks.expire_holds")
def expire_holds() -> int:
    return services.bookings_expire_holds(now=timezone.now())


@shared_task(name="bookings.tasks.materialise_slots")
def materialise_slots() -> int:
    return services.tutors_materialise(now=timezone.now())
