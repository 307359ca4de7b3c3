"""Emails about a week of a weekly series list the whole series in the reader's zone,
with the one payment's total (bookings/notifications.py, emails/_series.*)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bookings import notifications, zones
from bookings.models import Booking, BookingStatus, Notification, NotificationKind, Recipient
from tests.conftest import make_series

pytestmark = pytest.mark.django_db

FIRST = datetime(2027, 2, 16, 23, 0, tzinfo=UTC)  # Tue Feb 16, 18:00 New York


@pytest.fixture
def series(tutor: Any, remote: Any) -> Any:
    """Four Tuesdays, week 2 skipped; the student reads in Berlin time."""
    series = make_series(tutor, remote, FIRST, weeks=4, skip=(2,))
    series.bookings.update(student_timezone="Europe/Berlin")
    return series


def message(booking: Booking, kind: str, recipient: str, now: datetime) -> Any:
    n = Notification.objects.get(booking=booking, kind=kind, recipient=recipient)
    return notifications.build_message(n, now=now)


def html_of(email: Any) -> str:
    return str(email.alternatives[0][0])


def test_the_confirmation_is_one_payment_for_the_series_sessions_in_the_readers_zone(
    series: Any, now: datetime
) -> None:
    week1, week3, week4 = series.bookings.order_by("series_week")
    notifications.notify_confirmed(week1, now=now)

    student = message(week1, NotificationKind.CONFIRMED, Recipient.STUDENT, now)
    tutor = message(week1, NotificationKind.CONFIRMED, Recipient.TUTOR, now)

    berlin = [zones.when(b.slot.start, "Europe/Berlin", short=True) for b in (week1, week3, week4)]
    assert "One payment of $270.00 for 3 sessions" in student.body
    assert f"Week 1: {berlin[0]}" in student.body
    assert f"Week 3: {berlin[1]}" in student.body
    assert f"Week 4: {berlin[2]}" in student.body
    assert "Week 2:" not in student.body
    assert "One payment of $270.00 for 3 sessions" in html_of(student)
    assert f"Week 3: {berlin[1]}" in html_of(student)
    # The tutor reads the same series in their own zone.
    new_york = zones.when(week3.slot.start, "America/New_York", short=True)
    assert f"Week 3: {new_york}" in tutor.body
    assert "One payment of $270.00 for 3 sessions" in tutor.body


def test_a_cancelled_weeks_email_shows_the_series_with_that_week_cancelled(
    series: Any, now: datetime
) -> None:
    week3 = series.bookings.get(series_week=3)
    Booking.objects.filter(pk=week3.pk).update(status=BookingStatus.CANCELLED)
    week3.refresh_from_db()
    notifications.notify_cancelled(week3, now=now, refund_amount=9000, by="student")

    student = message(week3, NotificationKind.CANCELLED, Recipient.STUDENT, now)

    line = f"Week 3: {zones.when(week3.slot.start, 'Europe/Berlin', short=True)} (cancelled)"
    assert line in student.body
    assert "3 sessions, $270.00 in all" in student.body
    assert "(cancelled)" in html_of(student)
    assert "One payment" not in student.body


def test_a_single_sessions_emails_have_no_series_block(
    series: Any, now: datetime, tutor: Any, remote: Any
) -> None:
    week1 = series.bookings.get(series_week=1)
    Booking.objects.filter(pk=week1.pk).update(series=None, series_week=None)
    week1.refresh_from_db()
    notifications.notify_confirmed(week1, now=now + timedelta(minutes=1))

    student = message(week1, NotificationKind.CONFIRMED, Recipient.STUDENT, now)

    assert "Weekly series" not in student.body
    assert "Weekly series" not in html_of(student)
