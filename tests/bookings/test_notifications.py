"""Emails through the outbox: what each says, its invite, reminders exactly once."""

import email
import smtplib
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
import vobject
from django.core import mail

from bookings import notifications, services
from bookings.models import (
    Booking,
    BookingStatus,
    Notification,
    NotificationKind,
    NotificationState,
)
from tests.conftest import make_slot
from tests.mailbackends import FlakyBackend, refused

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def deliver_at_once(monkeypatch, frozen):
    """These tests run inside one transaction that never commits, so on_commit hooks
    would never fire: run them at once instead. (The real commit → Celery path is
    covered by test_celery_worker.py against a live worker.)"""
    monkeypatch.setattr(
        notifications.transaction, "on_commit", lambda fn, using=None, robust=False: fn()
    )


def held(slot, *, mode="remote", now, tz="Europe/Berlin") -> Booking:
    return services.booking_hold(
        slot_id=slot.pk,
        mode=mode,
        student_name="Sam Student",
        student_email="sam@example.com",
        notes="Decorators, please",
        student_timezone=tz,
        now=now,
    ).booking


def confirmed(slot, *, now, **kw) -> Booking:
    booking = held(slot, now=now, **kw)
    mail.outbox.clear()
    return services.booking_confirm(booking_id=booking.pk, now=now)


def parts(message: Any) -> Any:
    """The email as a receiving mail client would parse it."""
    return email.message_from_bytes(message.message().as_bytes())


def calendar_part(msg: Any) -> tuple[str, bytes]:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_param("method"), part.get_payload(decode=True)
    raise AssertionError("no text/calendar part")


def attachment(msg: Any) -> bytes:
    for part in msg.walk():
        if part.get_filename() == "invite.ics":
            return part.get_payload(decode=True)
    raise AssertionError("no invite.ics attachment")


def to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


# --- what the messages say ------------------------------------------------------------------


def test_confirmation_mails_the_student_an_invite_and_the_tutor_the_note(slot, now):
    booking = confirmed(slot, now=now)
    (student,) = to("sam@example.com")
    (tutor,) = to("ada@example.com")
    assert student.subject.startswith("Confirmed: Python (video) with Ada Park")
    assert booking.manage_url in student.body
    assert "https://meet.example.com/room" in student.body
    # Every time names its zone: the student's first, then the tutor's.
    assert "When:    Friday 4 December 2026, 16:00–17:00 Berlin time" in student.body
    assert "Fri 4 Dec, 10:00 New York time for Ada Park" in student.body
    assert "Decorators, please" in tutor.body
    assert "When:    Friday 4 December 2026, 10:00–11:00 New York time" in tutor.body
    assert "Fri 4 Dec, 16:00 Berlin time for Sam Student" in tutor.body
    assert booking.manage_url not in tutor.body
    html = student.alternatives[0]
    assert html.mimetype == "text/html" and booking.manage_url in html.content


def test_the_email_has_the_shape_mail_clients_recognise_as_an_invite(slot, now):
    confirmed(slot, now=now)
    msg = parts(to("sam@example.com")[0])
    assert msg.get_content_type() == "multipart/mixed"
    alternative = msg.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    method, body = calendar_part(msg)
    assert method == "REQUEST"
    # Same calendar; the text part's line endings are the transport's business.
    assert attachment(msg).splitlines() == body.splitlines()
    assert msg.get_payload()[1].get_content_type() == "application/ics"


def test_the_invite_reads_the_same_in_two_independent_parsers(slot, now):
    booking = confirmed(slot, now=now)
    _, body = calendar_part(parts(to("sam@example.com")[0]))

    cal = icalendar.Calendar.from_ical(body)
    assert cal["METHOD"] == "REQUEST"
    (event,) = cal.walk("VEVENT")
    assert event.decoded("DTSTART") == booking.slot.start
    assert event.decoded("DTEND") == booking.slot.end
    assert event["UID"] == booking.calendar_uid
    assert event.decoded("SEQUENCE") == 0
    assert str(event["ORGANIZER"]) == "mailto:ada@example.com"
    assert str(event["ATTENDEE"]) == "mailto:sam@example.com"
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"
    assert event.walk("VALARM")

    parsed = vobject.readOne(body.decode())
    assert parsed.method.value == "REQUEST"
    assert parsed.vevent.dtstart.value == booking.slot.start
    assert parsed.vevent.dtend.value == booking.slot.end
    assert parsed.vevent.uid.value == booking.calendar_uid
    assert parsed.vevent.sequence.value == "0"
    assert parsed.vevent.location.value == "https://meet.example.com/room"


def test_in_person_emails_carry_the_address_and_a_map_link(tutor, in_person, now):
    slot = make_slot(tutor, now + timedelta(days=2), in_person=in_person)
    confirmed(slot, now=now, mode="in_person")
    (student,) = to("sam@example.com")
    assert "40 W 40th St, New York, NY 10018" in student.body
    assert "https://www.openstreetmap.org/search?query=40+W+40th+St" in student.body
    _, body = calendar_part(parts(student))
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert "40 W 40th St" in str(event["LOCATION"])


def test_reschedule_and_cancel_keep_the_uid_and_raise_the_sequence(slot, tutor, remote, now):
    booking = confirmed(slot, now=now)
    first = icalendar.Calendar.from_ical(calendar_part(parts(to("sam@example.com")[0]))[1])
    other = make_slot(tutor, now + timedelta(days=4), remote=remote)
    mail.outbox.clear()
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    (moved_mail,) = to("sam@example.com")
    assert moved_mail.subject.startswith("Moved:")
    method, body = calendar_part(parts(moved_mail))
    moved = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert method == "REQUEST"
    assert moved.decoded("DTSTART") == other.start
    assert len(to("ada@example.com")) == 1

    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    (cancel_mail,) = to("sam@example.com")
    method, body = calendar_part(parts(cancel_mail))
    cancelled = icalendar.Calendar.from_ical(body)
    assert method == "CANCEL" and cancelled["METHOD"] == "CANCEL"
    cancelled_event = cancelled.walk("VEVENT")[0]
    assert cancelled_event["STATUS"] == "CANCELLED"
    assert "Refund: $90.00 goes back to your card" in cancel_mail.body
    uids = {first.walk("VEVENT")[0]["UID"], moved["UID"], cancelled_event["UID"]}
    assert len(uids) == 1
    sequences = [
        first.walk("VEVENT")[0].decoded("SEQUENCE"),
        moved.decoded("SEQUENCE"),
        cancelled_event.decoded("SEQUENCE"),
    ]
    assert sequences == [0, 1, 2]


def test_a_hold_that_expires_tells_the_student_once_late_money_can_no_longer_come(
    slot, now, frozen, settings
):
    settings.BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES = 10
    held(slot, now=now)
    mail.outbox.clear()
    expired_at = now + timedelta(hours=1)
    services.bookings_expire_holds(now=expired_at)
    assert mail.outbox == []  # the student may still be on the checkout page
    notifications.sweep(now=expired_at + timedelta(minutes=9))
    assert mail.outbox == []
    notifications.sweep(now=expired_at + timedelta(minutes=10))
    notifications.sweep(now=expired_at + timedelta(minutes=11))
    (message,) = mail.outbox
    assert message.subject.startswith("Your hold on")
    assert "/t/ada/" in message.body
    assert "Nothing was charged" in message.body
    assert not [p for p in parts(message).walk() if p.get_content_type() == "text/calendar"]


def test_a_student_dropping_their_own_hold_gets_no_email(slot, now):
    booking = held(slot, now=now)
    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    assert mail.outbox == []


# --- reminders --------------------------------------------------------------------------------


def reminders(booking: Booking) -> list[Notification]:
    return list(booking.notifications.filter(kind=NotificationKind.REMINDER).order_by("due_at"))


def test_reminders_are_owed_a_day_and_an_hour_before(slot, now):
    booking = confirmed(slot, now=now)
    rows = reminders(booking)
    assert [r.due_at for r in rows] == [
        slot.start - timedelta(hours=24),
        slot.start - timedelta(hours=1),
    ]
    assert all(r.state == NotificationState.PENDING for r in rows)


def test_a_booking_made_inside_an_offset_skips_that_reminder(tutor, remote, now):
    slot = make_slot(tutor, now + timedelta(hours=20), remote=remote)
    booking = confirmed(slot, now=now)
    assert [r.due_at for r in reminders(booking)] == [slot.start - timedelta(hours=1)]


def test_reminders_count_real_hours_across_a_dst_change(tutor, remote):
    # 18:00 New York on Monday 2026-11-02, the day after clocks fell back.
    now = datetime(2026, 10, 25, 12, tzinfo=UTC)
    slot = make_slot(tutor, datetime(2026, 11, 2, 23, tzinfo=UTC), remote=remote)
    booking = confirmed(slot, now=now)
    day_before, hour_before = reminders(booking)
    assert day_before.due_at == datetime(2026, 11, 1, 23, tzinfo=UTC)
    assert hour_before.due_at == datetime(2026, 11, 2, 22, tzinfo=UTC)


def test_the_sweep_sends_nothing_early_and_each_reminder_once(slot, now):
    booking = confirmed(slot, now=now)
    mail.outbox.clear()
    day_before = slot.start - timedelta(hours=24)
    notifications.sweep(now=day_before - timedelta(seconds=1))
    assert mail.outbox == []
    notifications.sweep(now=day_before)
    notifications.sweep(now=day_before + timedelta(minutes=1))
    (message,) = mail.outbox
    assert message.subject == "Reminder: Python (video) with Ada Park in 24 hours"
    assert booking.manage_url in message.body
    notifications.sweep(now=slot.start - timedelta(minutes=59))
    assert [m.subject for m in mail.outbox][-1].endswith("in 1 hour")
    assert len(mail.outbox) == 2


def test_cancelling_voids_the_reminders(slot, now):
    booking = confirmed(slot, now=now)
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    mail.outbox.clear()
    notifications.sweep(now=slot.start)
    assert mail.outbox == []
    assert {r.state for r in reminders(booking)} == {NotificationState.VOID}


def test_rescheduling_moves_the_reminders_to_the_new_time(slot, tutor, remote, now):
    booking = confirmed(slot, now=now)
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    owed = [r for r in reminders(booking) if r.state == NotificationState.PENDING]
    assert [r.due_at for r in owed] == [
        other.start - timedelta(hours=24),
        other.start - timedelta(hours=1),
    ]
    mail.outbox.clear()
    notifications.sweep(now=slot.start)  # the old time passes: nothing
    assert mail.outbox == []


def test_a_stale_reminder_row_is_voided_at_send_time_not_sent(slot, tutor, remote, now):
    booking = confirmed(slot, now=now)
    stale = reminders(booking)[0]
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    # Simulate a row that escaped voiding (e.g. claimed by a sweep at that very moment).
    Notification.objects.filter(pk=stale.pk).update(state=NotificationState.PENDING)
    mail.outbox.clear()
    assert notifications.deliver(stale.pk, now=stale.due_at) == "void"
    assert mail.outbox == []


# --- failures ---------------------------------------------------------------------------------


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.mailbackends.FlakyBackend"
    FlakyBackend.errors = []
    yield FlakyBackend
    FlakyBackend.errors = []


def test_a_transient_smtp_failure_is_retried_with_backoff(slot, now, flaky):
    booking = held(slot, now=now)
    flaky.errors = [smtplib.SMTPServerDisconnected("connection lost"), OSError("timed out")]
    services.booking_confirm(booking_id=booking.pk, now=now)
    row = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    assert row.state == NotificationState.PENDING
    assert row.attempts == 1
    assert row.due_at == now + timedelta(seconds=30)
    assert "connection lost" in row.last_error
    mail.outbox.clear()
    notifications.sweep(now=now + timedelta(minutes=1))
    row.refresh_from_db()
    assert row.state == NotificationState.SENT
    assert [m.to for m in mail.outbox].count(["sam@example.com"]) == 1


def test_a_permanent_refusal_stops_and_shows_as_failed(slot, now, flaky):
    booking = held(slot, now=now)
    flaky.errors = [refused(550)]
    services.booking_confirm(booking_id=booking.pk, now=now)
    row = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    assert row.state == NotificationState.FAILED
    assert "550" in row.last_error
    notifications.sweep(now=now + timedelta(hours=1))
    row.refresh_from_db()
    assert row.state == NotificationState.FAILED and row.attempts == 1


def test_after_too_many_attempts_the_row_fails_visibly(slot, now, flaky):
    booking = held(slot, now=now)
    flaky.errors = [OSError("down")] * 20
    services.booking_confirm(booking_id=booking.pk, now=now)
    later = now
    for _ in range(notifications.MAX_ATTEMPTS + 2):
        later += timedelta(hours=2)
        notifications.sweep(now=later)
    row = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    assert row.state == NotificationState.FAILED
    assert row.attempts == notifications.MAX_ATTEMPTS


def test_a_worker_that_died_mid_send_leaves_the_row_for_exactly_one_resend(slot, now):
    booking = held(slot, now=now)
    with pytest.MonkeyPatch.context() as patch:
        # The worker dies after claiming the row and before the mail server answered.
        patch.setattr(notifications, "enqueue", lambda pk: None)
        services.booking_confirm(booking_id=booking.pk, now=now)
    row = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    Notification.objects.filter(pk=row.pk).update(
        state=NotificationState.SENDING, claimed_at=now, attempts=1
    )
    mail.outbox.clear()
    notifications.sweep(now=now + timedelta(minutes=1))  # still within the lease
    assert to("sam@example.com") == []
    notifications.sweep(now=now + notifications.LEASE + timedelta(minutes=1))
    notifications.sweep(now=now + notifications.LEASE + timedelta(minutes=2))
    assert len(to("sam@example.com")) == 1
    row.refresh_from_db()
    assert row.state == NotificationState.SENT


def test_the_same_message_cannot_be_owed_twice(slot, now):
    booking = confirmed(slot, now=now)
    notifications.notify_confirmed(booking, now=now)
    assert booking.notifications.filter(kind=NotificationKind.CONFIRMED).count() == 2  # 1 each
    assert booking.status == BookingStatus.CONFIRMED


# --- the tutor's calendar feed ------------------------------------------------------------------


def test_the_feed_lists_confirmed_sessions_and_rotating_kills_the_old_url(
    client, slot, tutor, remote, now, tutor_api
):
    booking = confirmed(slot, now=now)
    held(make_slot(tutor, now + timedelta(days=6), remote=remote), now=now)  # unpaid: not listed
    old_path = f"/calendar/{tutor.feed_token}.ics"
    response = client.get(old_path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.content)
    assert "METHOD" not in cal
    (event,) = cal.walk("VEVENT")
    assert event["UID"] == booking.calendar_uid
    assert "Decorators, please" in str(event["DESCRIPTION"])

    body = tutor_api.post("/api/tutor/me/feed/rotate/").json()
    assert client.get(old_path).status_code == 404
    assert body["feed_url"].startswith("http://testserver/calendar/")
    assert client.get(body["feed_url"].removeprefix("http://testserver")).status_code == 200


def test_an_unknown_feed_token_is_a_404(client, db):
    assert client.get("/calendar/not-a-real-token-at-all-123.ics").status_code == 404
