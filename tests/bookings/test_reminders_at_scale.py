"""1,000 confirmed bookings over a week, two sweepers at once: each reminder once, none early."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F

from bookings import notifications
from bookings.models import (
    Booking,
    BookingStatus,
    Notification,
    NotificationKind,
    NotificationState,
)
from tests.bookings.test_concurrency import run_concurrently
from tests.conftest import add_offerings, make_slot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_sweepers_send_each_due_reminder_exactly_once(make_tutor, now):
    rows = []
    for t in range(10):
        tutor = make_tutor()
        remote, _ = add_offerings(tutor)
        for i in range(100):
            # Spread over the week: one slot every ~100 minutes per tutor.
            start = now + timedelta(hours=2, minutes=t * 10 + i * 100)
            slot = make_slot(tutor, start, remote=remote)
            booking = Booking.objects.create(
                tutor=tutor, slot=slot, offering=remote, mode="remote",
                student_name=f"S{t}-{i}", student_email=f"s{t}-{i}@example.com",
                price_amount=9000, currency="usd", status=BookingStatus.CONFIRMED,
            )  # fmt: skip
            rows.append(booking)
    for booking in rows:
        notifications._owe(booking, notifications._reminders(booking, now=now), now=now)
    owed = Notification.objects.filter(kind=NotificationKind.REMINDER)
    total = owed.count()
    assert 1000 < total < 2000  # bookings starting within 24 h skip the day-before reminder

    mail.outbox.clear()
    moment = now
    end = now + timedelta(days=8)
    while moment < end:
        moment += timedelta(hours=3)
        at = moment
        run_concurrently(2, lambda i, at=at: notifications.sweep(now=at))
        # Nothing sent is ever early, and nothing due is left behind.
        assert not owed.filter(state=NotificationState.SENT, sent_at__lt=F("due_at")).exists()
        assert not owed.filter(state=NotificationState.PENDING, due_at__lte=at).exists()

    assert owed.filter(state=NotificationState.SENT).count() == total
    ids = Counter(m.extra_headers["Message-ID"] for m in mail.outbox)
    assert len(ids) == total
    assert max(ids.values()) == 1
    for row in owed:
        assert row.sent_at is not None and row.sent_at >= row.due_at
