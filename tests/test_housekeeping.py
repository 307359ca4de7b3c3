"""Housekeeping: old Stripe events and finished outbox rows go, nothing else ever does."""

from collections.abc import Callable
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import services
from bookings.housekeeping import notifications_prune
from bookings.models import (
    Booking,
    BookingEvent,
    Notification,
    NotificationKind,
    NotificationState,
    Recipient,
)
from config.celery_app import app as celery_app
from payments.housekeeping import stripe_events_prune
from payments.models import Payment, Refund, StripeEvent
from tests.bookings.test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def booking(slot, now) -> Booking:
    """A held booking with its payment, status log and a refund: records kept forever."""
    booking = services.booking_hold(
        slot_id=slot.pk,
        mode="remote",
        student_name="Sam Student",
        student_email="sam@example.com",
        now=now,
    ).booking
    Refund.objects.create(
        payment=Payment.objects.get(booking=booking),
        amount=100,
        reason="test",
        idempotency_key=f"refund-{booking.pk}",
    )
    return booking


@pytest.fixture
def outbox_row(booking) -> Callable[..., Notification]:
    """An outbox row in `state`, created, due and (if sent) sent at `at`."""
    counter = iter(range(10_000))

    def make(state: str, at: datetime) -> Notification:
        row = Notification.objects.create(
            booking=booking,
            kind=NotificationKind.CONFIRMED,
            recipient=Recipient.STUDENT,
            key=f"k{next(counter)}",
            due_at=at,
            state=state,
            claimed_at=at if state != NotificationState.PENDING else None,
            sent_at=at if state == NotificationState.SENT else None,
        )
        Notification.objects.filter(pk=row.pk).update(created_at=at)
        return row

    return make


def stripe_event(at: datetime, n: int) -> StripeEvent:
    event = StripeEvent.objects.create(
        event_id=f"evt_{n}", type="checkout.session.completed", payload={}, processed_at=at
    )
    StripeEvent.objects.filter(pk=event.pk).update(received_at=at)
    return event


def kept_records() -> dict[str, int]:
    return {
        "bookings": Booking.objects.count(),
        "status log": BookingEvent.objects.count(),
        "payments": Payment.objects.count(),
        "refunds": Refund.objects.count(),
    }


def test_sent_and_void_rows_and_stripe_events_past_the_retention_are_deleted(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    for state in (NotificationState.SENT, NotificationState.VOID):
        outbox_row(state, old)
    for n in range(3):
        stripe_event(old, n)

    assert notifications_prune(now=now) == 2
    assert stripe_events_prune(now=now) == 3
    assert not Notification.objects.exists()
    assert not StripeEvent.objects.exists()


def test_rows_inside_the_retention_stay(outbox_row, now):
    recent = now - (settings.RETENTION_DAYS - 1) * DAY
    sent = outbox_row(NotificationState.SENT, recent)
    void = outbox_row(NotificationState.VOID, recent)
    event = stripe_event(recent, 1)

    assert notifications_prune(now=now) == 0
    assert stripe_events_prune(now=now) == 0
    assert set(Notification.objects.values_list("pk", flat=True)) == {sent.pk, void.pk}
    assert list(StripeEvent.objects.all()) == [event]


def test_emails_still_owed_being_sent_or_failed_stay_whatever_their_age(outbox_row, now):
    ancient = now - 1000 * DAY
    kept = {
        outbox_row(state, ancient).pk
        for state in (
            NotificationState.PENDING,
            NotificationState.SENDING,
            NotificationState.FAILED,
        )
    }

    assert notifications_prune(now=now) == 0
    assert set(Notification.objects.values_list("pk", flat=True)) == kept


def test_a_voided_reminder_stays_until_its_own_time_is_past_the_retention(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    reminder = outbox_row(NotificationState.VOID, old)
    Notification.objects.filter(pk=reminder.pk).update(due_at=now - DAY)

    assert notifications_prune(now=now) == 0
    assert Notification.objects.filter(pk=reminder.pk).exists()


def test_bookings_payments_refunds_and_status_logs_are_never_deleted(booking, outbox_row, now):
    before = kept_records()
    assert all(before.values())
    Booking.objects.update(created_at=now - 1000 * DAY)
    outbox_row(NotificationState.SENT, now - 1000 * DAY)

    call_command("prune", stdout=StringIO())

    assert kept_records() == before


def test_running_twice_changes_nothing_the_second_time(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    outbox_row(NotificationState.SENT, old)
    keep = outbox_row(NotificationState.PENDING, old)
    stripe_event(old, 1)
    notifications_prune(now=now)
    stripe_events_prune(now=now)
    rows = list(Notification.objects.values_list("pk", "state"))

    assert notifications_prune(now=now) == 0
    assert stripe_events_prune(now=now) == 0
    assert list(Notification.objects.values_list("pk", "state")) == rows == [(keep.pk, "pending")]


def test_deletes_go_in_batches_of_the_given_size(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    for _ in range(5):
        outbox_row(NotificationState.SENT, old)

    with CaptureQueriesContext(connection) as queries:
        assert notifications_prune(now=now, batch_size=2) == 5
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3


def test_a_time_budget_stops_after_a_batch_and_the_next_run_carries_on(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    for _ in range(5):
        outbox_row(NotificationState.SENT, old)

    assert notifications_prune(now=now, batch_size=2, budget_seconds=0) == 2
    assert notifications_prune(now=now, batch_size=2) == 3


def test_the_command_reports_what_it_deleted(outbox_row, now):
    old = timezone.now() - (settings.RETENTION_DAYS + 1) * DAY
    outbox_row(NotificationState.SENT, old)
    stripe_event(old, 1)
    stripe_event(old, 2)
    out = StringIO()

    call_command("prune", stdout=out)

    assert out.getvalue().strip() == (
        f"Deleted 2 Stripe events and 1 outbox rows older than {settings.RETENTION_DAYS} days."
    )


def test_beat_runs_both_prune_tasks_hourly(outbox_row):
    old = timezone.now() - (settings.RETENTION_DAYS + 1) * DAY
    outbox_row(NotificationState.SENT, old)
    stripe_event(old, 1)
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    celery_app.loader.import_default_modules()

    for name in ("bookings.tasks.prune_notifications", "payments.tasks.prune_stripe_events"):
        assert schedule[name] == timedelta(hours=1)
        assert celery_app.tasks[name].delay().get() == 1

    assert not Notification.objects.exists()
    assert not StripeEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_share_the_work_without_waiting_or_failing(outbox_row, now):
    old = now - (settings.RETENTION_DAYS + 1) * DAY
    for n in range(200):
        outbox_row(NotificationState.SENT, old)
        stripe_event(old, n)
    keep = outbox_row(NotificationState.PENDING, old)

    results = run_concurrently(
        6,
        lambda i: (notifications_prune if i % 2 else stripe_events_prune)(now=now, batch_size=7),
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 400
    assert list(Notification.objects.values_list("pk", flat=True)) == [keep.pk]
    assert not StripeEvent.objects.exists()
