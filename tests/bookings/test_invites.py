"""Invites as calendar software reads them: three independent parsers (icalendar,
vobject, and ical, a strict RFC 5545 / RFC 7986 one) agree on every message, and each
message keeps the iTIP rules (RFC 5546, RFC 6047) for its method.

The choices these tests hold (bookings/ics.py explains them): the student gets
REQUEST / CANCEL with themselves as the one ATTENDEE, already ACCEPTED and asked for no
answer (RSVP=FALSE); the tutor, the ORGANIZER, gets the feed's own event as PUBLISH;
ORGANIZER names the From address as SENT-BY; UIDs and Message-IDs are random and
stored, so neither a new site address nor a database reset changes or repeats them.
"""

import email
import email.utils
import re
from datetime import timedelta
from typing import Any

import icalendar
import pytest
import vobject
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from ical.calendar_stream import IcsCalendarStream

from bookings import notifications, services
from bookings.models import Booking, Notification, NotificationKind, NotificationState
from tests.bookings.test_notifications import confirmed, deliver_at_once, held, to  # noqa: F401
from tests.conftest import make_slot

pytestmark = pytest.mark.django_db


# --- reading a message as a mail client and three calendar parsers do ------------------------


def received(message: Any) -> Any:
    return email.message_from_bytes(message.message().as_bytes())


def invite_parts(message: Any) -> dict[str, Any]:
    """{"alternative": part, "attachment": part}, whichever the message has."""
    found = {}
    for part in received(message).walk():
        if part.get_filename():
            found["attachment"] = part
        elif part.get_content_type() == "text/calendar":
            found["alternative"] = part
    return found


def the_invite(message: Any) -> tuple[str, bytes]:
    """The invite's METHOD (from its MIME part) and bytes, the attachment's copy."""
    part = invite_parts(message)["attachment"]
    return part.get_param("method"), part.get_payload(decode=True)


def read_three_ways(body: bytes) -> list[dict[str, Any]]:
    """The calendar's one VEVENT, as each parser reads it, in the same terms."""
    readings = []

    cal = icalendar.Calendar.from_ical(body)
    (event,) = cal.walk("VEVENT")
    attendees = event.get("ATTENDEE", [])
    attendees = attendees if isinstance(attendees, list) else [attendees]
    readings.append(
        {
            "method": str(cal.get("METHOD", "")) or None,
            "uid": str(event["UID"]),
            "sequence": int(event.decoded("SEQUENCE")),
            "start": event.decoded("DTSTART"),
            "end": event.decoded("DTEND"),
            "stamp": event.decoded("DTSTAMP"),
            "status": str(event["STATUS"]),
            "summary": str(event["SUMMARY"]),
            "description": str(event["DESCRIPTION"]),
            "location": str(event.get("LOCATION", "")) or None,
            "organizer": str(event["ORGANIZER"]),
            "sent_by": event["ORGANIZER"].params.get("SENT-BY"),
            "attendees": [
                (str(a), a.params.get("PARTSTAT"), a.params.get("RSVP")) for a in attendees
            ],
            "conference": str(event["CONFERENCE"]) if "CONFERENCE" in event else None,
            "alarms": len(event.walk("VALARM")),
        }
    )

    parsed = vobject.readOne(body.decode("utf-8"))
    vevent = parsed.vevent
    contents = vevent.contents
    organizer = vevent.organizer
    readings.append(
        {
            "method": parsed.method.value if "method" in parsed.contents else None,
            "uid": vevent.uid.value,
            "sequence": int(vevent.sequence.value),
            "start": vevent.dtstart.value,
            "end": vevent.dtend.value,
            "stamp": vevent.dtstamp.value,
            "status": vevent.status.value,
            "summary": vevent.summary.value,
            "description": vevent.description.value,
            "location": vevent.location.value if "location" in contents else None,
            "organizer": organizer.value,
            "sent_by": organizer.params.get("SENT-BY", [None])[0],
            "attendees": [
                (a.value, a.params.get("PARTSTAT", [None])[0], a.params.get("RSVP", [None])[0])
                for a in contents.get("attendee", [])
            ],
            "conference": contents["conference"][0].value if "conference" in contents else None,
            "alarms": len(contents.get("valarm", [])),
        }
    )

    strict = IcsCalendarStream.calendar_from_ics(body.decode("utf-8"))
    (strict_event,) = strict.events
    readings.append(
        {
            "method": strict.method,
            "uid": strict_event.uid,
            "sequence": strict_event.sequence,
            "start": strict_event.dtstart,
            "end": strict_event.dtend,
            "stamp": strict_event.dtstamp,
            "status": strict_event.status.value if strict_event.status else None,
            "summary": strict_event.summary,
            "description": strict_event.description,
            "location": strict_event.location,
            "organizer": strict_event.organizer.uri if strict_event.organizer else None,
            "sent_by": strict_event.organizer.sent_by if strict_event.organizer else None,
            "attendees": [
                (a.uri, a.status, None if a.rsvp is None else str(a.rsvp).upper())
                for a in strict_event.attendees
            ],
            "conference": strict_event.conference[0].uri if strict_event.conference else None,
            "alarms": len(strict_event.alarm),
        }
    )
    return readings


def agreed(body: bytes) -> dict[str, Any]:
    """What all three parsers read alike (the test fails where they differ)."""
    first, *others = read_three_ways(body)
    for other in others:
        assert other == first
    return first


def student_invite(message: Any) -> dict[str, Any]:
    method, body = the_invite(message)
    event = agreed(body)
    assert method == event["method"]
    return event


# --- the student's invite: REQUEST, then REQUEST, then CANCEL --------------------------------


def test_the_student_is_invited_as_accepted_and_asked_for_no_answer(slot, now):
    booking = confirmed(slot, now=now)
    (message,) = to("sam@example.com")
    assert set(invite_parts(message)) == {"alternative", "attachment"}
    event = student_invite(message)
    assert event["method"] == "REQUEST"
    assert event["uid"] == booking.calendar_uid
    assert (event["start"], event["end"]) == (slot.start, slot.end)
    # RFC 5546 §3.2.2: a REQUEST names the organizer and at least one attendee.
    assert event["organizer"] == "mailto:ada@example.com"
    assert event["attendees"] == [("mailto:sam@example.com", "ACCEPTED", "FALSE")]
    # Answering in a calendar changes nothing, and the invite says so (no dead end).
    assert "does not change the booking" in event["description"]
    assert "manage link" in event["description"]
    assert booking.manage_token not in event["description"]
    assert "does not change the booking" in message.body


def test_the_organizer_names_the_address_the_email_comes_from(slot, now, settings):
    settings.DEFAULT_FROM_EMAIL = "Ada's sessions <sessions@tutoring.example>"
    confirmed(slot, now=now)
    for message in mail.outbox:
        sender = email.utils.parseaddr(received(message)["From"])[1]
        assert sender == "sessions@tutoring.example"
        event = agreed(the_invite(message)[1])
        # RFC 6047 §3: From is the organizer, or SENT-BY names it.
        assert event["sent_by"] == f"mailto:{sender}"


def test_a_video_session_carries_its_link_as_a_conference(slot, now):
    confirmed(slot, now=now)
    for message in mail.outbox:
        event = agreed(the_invite(message)[1])
        assert event["conference"] == "https://meet.example.com/room"
        assert event["location"] == "https://meet.example.com/room"
    conference = icalendar.Calendar.from_ical(the_invite(to("sam@example.com")[0])[1]).walk(
        "VEVENT"
    )[0]["CONFERENCE"]
    assert conference.params["VALUE"] == "URI" and conference.params["FEATURE"] == "VIDEO"


def test_moves_and_the_cancellation_keep_the_uid_and_raise_the_sequence(slot, tutor, remote, now):
    booking = confirmed(slot, now=now)
    first = student_invite(to("sam@example.com")[0])
    other = make_slot(tutor, now + timedelta(days=4), remote=remote)
    mail.outbox.clear()
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    moved = student_invite(to("sam@example.com")[0])
    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    cancelled = student_invite(to("sam@example.com")[0])

    assert [e["method"] for e in (first, moved, cancelled)] == ["REQUEST", "REQUEST", "CANCEL"]
    assert {e["uid"] for e in (first, moved, cancelled)} == {booking.calendar_uid}
    assert [e["sequence"] for e in (first, moved, cancelled)] == [0, 1, 2]
    assert moved["start"] == other.start
    # RFC 5546 §3.2.5: a CANCEL names the organizer and the attendees it removes.
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["organizer"] == "mailto:ada@example.com"
    assert [a[0] for a in cancelled["attendees"]] == ["mailto:sam@example.com"]
    # Nothing to join any more: no link, no alarm.
    assert cancelled["conference"] is None and cancelled["location"] is None
    assert "meet.example.com" not in cancelled["description"]
    assert cancelled["alarms"] == 0


def test_no_invite_asks_for_an_answer_it_already_has(slot, tutor, remote, now):
    booking = confirmed(slot, now=now)
    other = make_slot(tutor, now + timedelta(days=4), remote=remote)
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    services.booking_cancel(booking_id=booking.pk, actor="tutor", now=now)
    invites = [the_invite(m)[1] for m in mail.outbox if invite_parts(m)]
    assert len(invites) == 6  # three messages, student and tutor each
    for body in invites:
        for _, partstat, rsvp in agreed(body)["attendees"]:
            assert rsvp == "FALSE"
            assert partstat in ("ACCEPTED", None)


# --- the tutor's copy: the feed's event, published -------------------------------------------


def test_the_tutors_copy_is_the_feeds_event_published_not_a_request(client, slot, tutor, now):
    booking = confirmed(slot, now=now)
    (message,) = to("ada@example.com")
    # Only an attachment: nothing adds it to a calendar by itself, and nothing asks
    # the organizer to answer their own session.
    assert set(invite_parts(message)) == {"attachment"}
    method, body = the_invite(message)
    assert method == "PUBLISH"
    published = agreed(body)
    assert published["method"] == "PUBLISH"
    # RFC 5546 §3.2.1: a PUBLISH has an organizer and no attendee.
    assert published["organizer"] == "mailto:ada@example.com"
    assert published["attendees"] == []
    assert "Student: Sam Student <sam@example.com>" in published["description"]

    feed = icalendar.Calendar.from_ical(client.get(f"/calendar/{tutor.feed_token}.ics").content)
    (in_feed,) = feed.walk("VEVENT")
    sent = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    # The same event: every property but DTSTAMP (when each copy was made) is equal.
    assert {k: v.to_ical() for k, v in in_feed.items() if k != "DTSTAMP"} == {
        k: v.to_ical() for k, v in sent.items() if k != "DTSTAMP"
    }
    assert str(in_feed["UID"]) == booking.calendar_uid


def test_the_tutor_is_told_of_a_cancellation_with_the_same_event_cancelled(slot, now):
    booking = confirmed(slot, now=now)
    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    (message,) = to("ada@example.com")
    method, body = the_invite(message)
    event = agreed(body)
    assert (method, event["method"]) == ("PUBLISH", "PUBLISH")
    assert event["status"] == "CANCELLED"
    assert (event["uid"], event["sequence"]) == (booking.calendar_uid, 1)


# --- identities that outlive the site's address and the database -----------------------------


def test_uids_are_random_stored_and_survive_a_new_site_address(slot, tutor, remote, now, settings):
    settings.CALENDAR_UID_DOMAIN = "tutoring.example"
    booking = confirmed(slot, now=now)
    assert re.fullmatch(r"[0-9a-f-]{36}@tutoring\.example", booking.calendar_uid)
    other = confirmed(make_slot(tutor, now + timedelta(days=5), remote=remote), now=now)
    assert other.calendar_uid != booking.calendar_uid

    settings.PUBLIC_BASE_URL = "https://book.new-domain.example"
    settings.CALENDAR_UID_DOMAIN = "new-domain.example"
    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    assert student_invite(to("sam@example.com")[0])["uid"] == booking.calendar_uid


def test_message_ids_are_stored_kept_on_a_resend_and_thread_later_emails(slot, now, settings):
    booking = confirmed(slot, now=now)
    first = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    (sent,) = to("sam@example.com")
    assert sent.extra_headers["Message-ID"] == f"<{first.message_id}>"
    assert "In-Reply-To" not in sent.extra_headers

    # The same row sent again (a worker died after the server took it) is the same message.
    settings.PUBLIC_BASE_URL = "https://book.new-domain.example"
    Notification.objects.filter(pk=first.pk).update(state=NotificationState.PENDING)
    mail.outbox.clear()
    assert notifications.deliver(first.pk, now=now) == "sent"
    assert to("sam@example.com")[0].extra_headers["Message-ID"] == f"<{first.message_id}>"

    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    (cancel_mail,) = to("sam@example.com")
    cancel_row = booking.notifications.get(kind=NotificationKind.CANCELLED, recipient="student")
    assert cancel_mail.extra_headers["Message-ID"] == f"<{cancel_row.message_id}>"
    assert cancel_mail.extra_headers["In-Reply-To"] == f"<{first.message_id}>"
    assert cancel_mail.extra_headers["References"] == f"<{first.message_id}>"
    assert cancel_row.message_id != first.message_id


@pytest.mark.django_db(transaction=True)
def test_rows_made_before_stored_identities_keep_the_ones_already_sent(slot, remote, now):
    """Invites already in calendars were sent with UID booking-<id>@<site host>, and
    emails with Message-ID <notification-<row>.<booking>@<host>>: the migration stores
    exactly those, so an update still finds the event and a resend is the same email."""
    from django.core.management import call_command

    booking = held(slot, now=now)
    services.booking_confirm(booking_id=booking.pk, now=now)
    row = booking.notifications.get(kind=NotificationKind.CONFIRMED, recipient="student")
    executor = MigrationExecutor(connection)
    executor.migrate([("bookings", "0012_signed_tokens")])
    try:
        # Every app: going back to 0012 also unapplied payments' migrations that
        # depend on later bookings ones (0003: a series' payment).
        call_command("migrate", verbosity=0)
        booking = Booking.objects.get(pk=booking.pk)
        assert booking.calendar_uid == f"booking-{booking.pk}@testserver"
        row.refresh_from_db()
        assert row.message_id == f"notification-{row.pk}.{booking.pk}@testserver"

        mail.outbox.clear()
        services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
        assert student_invite(to("sam@example.com")[0])["uid"] == booking.calendar_uid
        fresh = held(make_slot(booking.tutor, now + timedelta(days=6), remote=remote), now=now)
        assert fresh.calendar_uid.endswith("@localhost")
        assert not fresh.calendar_uid.startswith("booking-")
    finally:
        call_command("migrate", verbosity=0)
