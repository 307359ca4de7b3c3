"""Redis down: students still book, and every email still goes out once it is back."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.cache import caches
from django.utils import timezone
from kombu import pools as kombu_pools

from bookings import notifications
from bookings.models import Booking, Notification, NotificationState
from config.celery_app import app as celery_app
from config.settings.base import broker_transport_options
from payments import services as payment_services
from payments.models import Payment
from tests.conftest import hold, make_slot

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.django_db
def test_a_dead_cache_turns_throttles_off_instead_of_failing_holds(api, slot, frozen, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DEAD_REDIS,
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"holds_ip": "5/min", "holds_email": "5/min",
                                   "manage_ip": "5/min"},
    }  # fmt: skip
    caches.close_all()
    response = hold(api, slot)
    assert response.status_code == 201
    assert api.get(f"/api/bookings/{Booking.objects.get().manage_token}/").status_code == 200


@pytest.fixture
def dead_broker() -> Iterator[None]:
    """Celery publishing to a Redis that refuses connections, as during an outage."""
    patch = pytest.MonkeyPatch()
    patch.setitem(celery_app.conf, "task_always_eager", False)
    for key in ("broker_url", "broker_write_url"):
        patch.setitem(celery_app.conf, key, DEAD_REDIS)
    # As production configures a Redis broker (the suite may run on another transport).
    patch.setitem(celery_app.conf, "broker_transport_options", broker_transport_options(DEAD_REDIS))
    _fresh_pool()  # pooled connections belong to the old URL
    yield
    patch.undo()
    _fresh_pool()  # and these to the dead one


def _fresh_pool() -> None:
    """Drop Celery's broker connections; the next publish connects to the current URL."""
    kombu_pools.reset()  # closes every pooled connection and forgets the pools
    app: Any = celery_app  # the stubs do not know the private caches
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_booking_commits_and_its_emails_follow_later(
    tutor, remote, dead_broker
):
    now = timezone.now()
    slot = make_slot(tutor, (now + timedelta(days=3)).replace(microsecond=0), remote=remote)

    from rest_framework.test import APIClient

    api = APIClient()
    started = time.monotonic()
    assert hold(api, slot).status_code == 201
    payment_services.simulated_pay(payment=Payment.objects.get(), now=timezone.now())
    elapsed = time.monotonic() - started
    booking = Booking.objects.get()
    assert booking.status == "confirmed"
    owed = Notification.objects.filter(booking=booking, kind="confirmed")
    assert owed.count() == 2
    assert set(owed.values_list("state", flat=True)) == {NotificationState.PENDING}
    assert mail.outbox == []
    assert elapsed < 10, "queuing must give up quickly, not hold the request"

    # Redis is back: the minute sweep delivers what is owed, once.
    counts = notifications.sweep(now=timezone.now())
    assert counts.get("sent") == 2
    assert notifications.sweep(now=timezone.now()).get("sent") is None
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "sam@example.com"]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_cancellation_still_refunds_at_once(tutor, remote, dead_broker):
    from rest_framework.test import APIClient

    from payments.models import Refund, RefundStatus

    now = timezone.now()
    slot = make_slot(tutor, (now + timedelta(days=3)).replace(microsecond=0), remote=remote)
    api = APIClient()
    assert hold(api, slot).status_code == 201
    payment_services.simulated_pay(payment=Payment.objects.get(), now=timezone.now())
    booking = Booking.objects.get()

    started = time.monotonic()
    response = api.post(f"/api/bookings/{booking.manage_token}/cancel/")
    assert response.status_code == 200
    assert time.monotonic() - started < 10, "queuing must give up quickly"
    # No worker can be reached, so the request asked for the refund itself.
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (9000, RefundStatus.SUCCEEDED)
