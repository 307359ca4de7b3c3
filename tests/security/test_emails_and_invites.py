"""No stored string breaks an email or a calendar file, no student secret reaches the
tutor, only a confirmed booking is an event, and each booking tells one story.

Stored values are written straight into the rows (old rows, admin edits): the edge's
validation is someone else's job, and the builders must be safe without it.
"""

import email
import email.policy
import re
import smtplib
from datetime import datetime, timedelta
from typing import Any

import icalendar
import pytest
import vobject
from django.core import mail
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bookings import ics, notifications, services
from bookings.models import (
    Booking,
    BookingStatus,
    Notification,
    NotificationKind,
    NotificationState,
    Offering,
    Tutor,
)
from tests.bookings.test_notifications import confirmed, held, to
from tests.conftest import make_slot
from tests.mailbackends import FlakyBackend

pytestmark = pytest.mark.django_db

# Everything str.splitlines() splits on, and a few other controls.
LINE_ENDS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
CONTROLS = [*LINE_ENDS, "\t", "\x00", "\x07", "\x1b", "\x7f", "\x9f", "\u202e"]


@pytest.fixture(autouse=True)
def deliver_at_once(monkeypatch, frozen):
    """The tests run in one transaction that never commits: run on_commit hooks at once."""
    monkeypatch.setattr(
        notifications.transaction, "on_commit", lambda fn, using=None, robust=False: fn()
    )


def store(model: Any, pk: Any, **fields: Any) -> None:
    """Write values the way an old row or an admin edit would: past every validator."""
    model.objects.filter(pk=pk).update(**fields)


def raw(message: Any) -> bytes:
    return message.message().as_bytes()


def parsed(message: Any, policy: Any = email.policy.compat32) -> Any:
    """The sent bytes as a receiving mail client parses them."""
    return email.message_from_bytes(raw(message), policy=policy)


def decoded_parts(message: Any) -> list[bytes]:
    return [
        part.get_payload(decode=True) for part in parsed(message).walk() if not part.is_multipart()
    ]


def unfold(body: bytes) -> str:
    """An iCalendar file with its folded lines joined again (RFC 5545 §3.1)."""
    return re.sub(r"\r\n[ \t]", "", body.decode("utf-8"))


def everything(message: Any) -> str:
    """Headers and every decoded body part (calendars unfolded): all a reader, or their
    software, gets."""
    msg = parsed(message, email.policy.default)
    head = "\n".join(f"{k}: {v}" for k, v in msg.items())
    return head + "\n".join(unfold(p) for p in decoded_parts(message))


def calendars(message: Any) -> dict[str, tuple[Any, bytes]]:
    """{"alternative": (part, bytes), "attachment": (part, bytes)}."""
    found = {}
    for part in parsed(message).walk():
        if part.get_filename() in ("invite.ics", "session.ics"):
            found["attachment"] = (part, part.get_payload(decode=True))
        elif part.get_content_type() == "text/calendar":
            found["alternative"] = (part, part.get_payload(decode=True))
    return found


EXPECTED_HEADERS = {"content-type", "mime-version", "subject", "from", "to", "date", "message-id"}


def assert_headers_intact(message: Any) -> None:
    for policy in (email.policy.compat32, email.policy.default):
        msg = parsed(message, policy)
        names = {k.lower() for k in msg}
        # Later emails about a booking reply to its confirmation (threading).
        assert names - {"reply-to", "in-reply-to", "references"} == EXPECTED_HEADERS, names
        # The body did not leak into the headers: the MIME tree is whole.
        assert msg.get_content_type() in ("multipart/mixed", "multipart/alternative")
        assert [p.get_content_type() for p in msg.walk()].count("text/plain") == 1
        assert not msg.defects
        for value in msg.values():
            assert len(str(value).splitlines()) <= 1 or policy is email.policy.compat32


# --- 1. control characters in any stored string ------------------------------------------------


@pytest.mark.parametrize("sep", LINE_ENDS, ids=repr)
def test_no_line_end_in_a_students_name_ends_the_tutors_headers(slot, now, sep):
    booking = held(slot, now=now)
    name = f"Zoë{sep}Bcc: evil@example.com{sep}X-Injected: yes"
    store(Booking, booking.pk, student_name=name)
    mail.outbox.clear()
    services.booking_confirm(booking_id=booking.pk, now=now)

    (tutor_mail,) = to("ada@example.com")
    assert_headers_intact(tutor_mail)
    msg = parsed(tutor_mail, email.policy.default)
    subject = str(msg["Subject"]).strip()  # a long encoded subject starts with a fold
    assert subject.startswith("New booking: Zoë Bcc: evil@example.com X-Injected: yes")
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert set(
        Booking.objects.get(pk=booking.pk).notifications.values_list("state", flat=True)
    ) == {
        NotificationState.SENT,
        NotificationState.PENDING,  # the reminders
    }
    assert calendars(tutor_mail)
    for _, body in calendars(tutor_mail).values():
        (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
        assert "ATTENDEE" not in event  # the tutor's copy is a PUBLISH: the name is text
        assert event["SUMMARY"] == "Python (video) with Zoë Bcc: evil@example.com X-Injected: yes"
        other = vobject.readOne(body.decode("utf-8"))
        assert (
            "Student: Zoë Bcc: evil@example.com X-Injected: yes <" in other.vevent.description.value
        )
    (student_mail,) = to("sam@example.com")
    for _, body in calendars(student_mail).values():
        (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
        assert event["ATTENDEE"].params["CN"] == "Zoë Bcc: evil@example.com X-Injected: yes"
        cn = vobject.readOne(body.decode("utf-8")).vevent.attendee.params["CN"][0]
        assert cn == "Zoë Bcc: evil@example.com X-Injected: yes"


@pytest.mark.parametrize("sep", CONTROLS, ids=repr)
def test_no_control_character_in_any_stored_text_breaks_an_email_or_its_invite(
    slot, tutor, remote, now, sep, is_postgres
):
    if sep == "\x00" and is_postgres:
        pytest.skip("PostgreSQL text cannot hold NUL at all")
    booking = held(slot, now=now)
    store(Booking, booking.pk, student_name=f"Sam{sep}Student", notes=f"line one{sep}two")
    store(Tutor, tutor.pk, display_name=f"Ada{sep}Park")
    store(Offering, remote.pk, title=f"Python{sep}(video)")
    mail.outbox.clear()
    services.booking_confirm(booking_id=booking.pk, now=now)

    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert_headers_intact(message)
        subject = str(parsed(message, email.policy.default)["Subject"])
        assert "Python (video)" in subject or "Sam Student" in subject
        for part, body in calendars(message).values():
            assert part.get_content_charset() == "utf-8"
            text = body.decode("utf-8")
            lines = text.split("\r\n")
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202e]", "".join(lines))
            (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
            assert event["ORGANIZER"].params["CN"] == "Ada Park"
            assert vobject.readOne(text).vevent.organizer.params["CN"] == ["Ada Park"]


@pytest.mark.parametrize(
    "address",
    [
        '"sam\x0bBcc: evil"@example.com',  # EmailField accepts controls in a quoted local part
        '"sam\u2028x"@example.com',
        "sam@example.com,evil@example.com",
        "Evil <evil@example.com>",
    ],
    ids=repr,
)
def test_a_stored_student_address_that_is_not_one_safe_mailbox_is_never_used(slot, now, address):
    booking = held(slot, now=now)
    store(Booking, booking.pk, student_email=address)
    mail.outbox.clear()
    services.booking_confirm(booking_id=booking.pk, now=now)

    student_row = Notification.objects.get(
        booking=booking, kind=NotificationKind.CONFIRMED, recipient="student"
    )
    assert student_row.state == NotificationState.FAILED  # permanently: no retry loop
    (tutor_mail,) = mail.outbox
    assert tutor_mail.to == ["ada@example.com"]
    assert tutor_mail.reply_to == []
    assert_headers_intact(tutor_mail)
    assert calendars(tutor_mail)
    for _, body in calendars(tutor_mail).values():
        text = unfold(body)
        assert "\x0b" not in text and "\u2028" not in text
        (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
        assert "ATTENDEE" not in event  # the address is only in the text, one line
        student_line = str(event["DESCRIPTION"]).splitlines()[1]
        assert student_line.startswith("Student: Sam Student <") and student_line.endswith(">")
        assert vobject.readOne(text).vevent.description.value == str(event["DESCRIPTION"])


@pytest.mark.parametrize("sep", ["\r\n", "\v", "\u2028"], ids=repr)
@pytest.mark.parametrize("mode", ["remote", "in_person"])
def test_place_names_and_video_links_cannot_add_calendar_lines_or_stop_the_email(
    tutor, in_person, remote, now, mode, sep
):
    store(Offering, in_person.pk, place_name=f"Café{sep}ATTENDEE:mailto:x@evil.example",
          place_address=f"5 Ave{sep}X")  # fmt: skip
    store(Offering, remote.pk, video_url=f"https://meet.example.com/a{sep}URL:https://evil.example")
    start = now + timedelta(days=3)
    if mode == "remote":
        slot = make_slot(tutor, start, remote=Offering.objects.get(pk=remote.pk))
    else:
        slot = make_slot(tutor, start, in_person=Offering.objects.get(pk=in_person.pk))
    confirmed(slot, now=now, mode=mode)
    assert len(mail.outbox) == 2  # the email still goes
    for message in mail.outbox:
        assert_headers_intact(message)
        assert "URL:https://evil" not in message.body  # an unusable link is left out
        for _, body in calendars(message).values():
            lines = unfold(body).split("\r\n")
            assert not [line for line in lines if "evil" in line.split(":", 1)[0]]
            (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
            attendees = 1 if message.to == ["sam@example.com"] else 0  # the tutor's: PUBLISH
            if attendees:
                assert isinstance(event["ATTENDEE"], icalendar.vCalAddress)  # just the one
            assert "URL" not in event or "evil" not in str(event["URL"])
            vevent = vobject.readOne(body.decode("utf-8")).vevent
            assert len(vevent.contents.get("attendee", [])) == attendees


@pytest.mark.parametrize("char", [*LINE_ENDS, "\x00", "\ud800", "\u202e", "\t"], ids=repr)
def test_one_line_leaves_nothing_a_parser_could_split_on(char):
    value = ics.one_line(f"  a{char}{char}b  c ")
    assert value == "a b c"
    assert value.splitlines() == [value]
    value.encode("utf-8")  # lone surrogates are gone too


def test_a_note_keeps_its_lines_but_nothing_else():
    assert ics.text_block("one\r\ntwo\u2028three\x1cfour\x07five") == "one\ntwo\nthree\nfour five"


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(min_size=1, max_size=60),
    title=st.text(min_size=1, max_size=40),
    tutor_name=st.text(min_size=1, max_size=40),
)
def test_any_stored_names_give_intact_headers_and_an_invite_both_parsers_read(
    slot, now, name, title, tutor_name
):
    booking = confirmed(slot, now=now) if not Booking.objects.exists() else Booking.objects.get()
    for recipient in ("student", "tutor"):
        row = Notification.objects.get(
            booking=booking, kind=NotificationKind.CONFIRMED, recipient=recipient
        )
        row.booking.student_name = name
        row.booking.offering.title = title
        row.booking.tutor.display_name = tutor_name
        message = notifications.build_message(row, now=now)
        assert_headers_intact(message)
        for _, body in calendars(message).values():
            (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
            other = vobject.readOne(body.decode("utf-8")).vevent
            cn = ics.one_line(name, limit=200).replace('"', "'").replace("\\", "/")
            if recipient == "student":
                assert event["ATTENDEE"].params.get("CN", "") == cn
            else:
                assert "ATTENDEE" not in event  # the tutor's copy is a PUBLISH
            assert str(event["SUMMARY"]) == other.summary.value
            assert str(event["DESCRIPTION"]) == other.description.value


# --- 2. nothing the tutor receives carries a student's secret ------------------------------------


def test_no_tutor_email_invite_or_feed_carries_the_students_manage_link(
    client, tutor, in_person, remote, now
):
    slot = make_slot(tutor, now + timedelta(days=3), in_person=in_person)
    booking = confirmed(slot, now=now, mode="in_person")
    other = make_slot(tutor, now + timedelta(days=4), in_person=in_person)
    services.booking_reschedule(booking_id=booking.pk, slot_id=other.pk, now=now)
    feed = client.get(f"/calendar/{tutor.feed_token}.ics").content
    notifications.notify_payment_refused(
        booking, now=now, amount=100, currency="usd", why="wrong_amount"
    )
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)

    token = booking.manage_token
    tutor_mail = to("ada@example.com")
    kinds = {"New booking", "Moved", "Refunded", "Cancelled"}
    assert {m.subject.split(":")[0] for m in tutor_mail} == kinds
    for message in tutor_mail:
        assert token not in everything(message)
        assert token not in message.body
    assert b"BEGIN:VEVENT" in feed and token not in unfold(feed)
    (event,) = icalendar.Calendar.from_ical(feed).walk("VEVENT")
    assert str(event["URL"]).startswith("https://www.openstreetmap.org/")
    # The student's own emails keep the link, and nothing the student gets has the feed's.
    student_mail = to("sam@example.com")
    assert student_mail and all(token in m.body for m in student_mail)
    assert all(tutor.feed_token not in everything(m) for m in student_mail)


def test_the_tutors_templates_are_not_given_the_manage_link(slot, now):
    booking = confirmed(slot, now=now)
    for row in booking.notifications.filter(recipient="tutor"):
        assert "manage_url" not in notifications._context(row)
    for row in booking.notifications.filter(recipient="student"):
        assert notifications._context(row)["manage_url"] == booking.manage_url


def test_a_students_calendar_event_carries_no_manage_link(slot, now):
    # Calendar events travel (shared calendars, iTIP replies to the organizer).
    booking = confirmed(slot, now=now)
    (student,) = to("sam@example.com")
    found = calendars(student)
    assert found
    for _, body in found.values():
        assert booking.manage_token not in unfold(body)


# --- 3. only a confirmed booking is an event ---------------------------------------------------


def invite(api: Any, booking: Booking) -> Any:
    return api.get(f"/api/bookings/{booking.manage_token}/invite.ics")


def test_a_held_booking_has_no_invite(api, slot, now):
    booking = held(slot, now=now)
    response = invite(api, booking)
    assert response.status_code == 404
    assert b"meet.example.com" not in response.content
    with pytest.raises(ics.NotAnEvent):
        ics.booking_calendar(booking, now=now)


def test_an_expired_hold_has_no_invite_and_leaves_no_event_anywhere(api, client, slot, tutor, now):
    booking = held(slot, now=now)
    services.bookings_expire_holds(now=now + timedelta(hours=1))
    notifications.sweep(now=now + timedelta(hours=2))
    assert invite(api, booking).status_code == 404
    feed = client.get(f"/calendar/{tutor.feed_token}.ics").content
    assert b"BEGIN:VEVENT" not in feed
    for message in mail.outbox:
        assert not calendars(message)
        assert "meet.example.com" not in everything(message)


def test_a_hold_dropped_before_payment_has_no_invite(api, slot, now):
    booking = held(slot, now=now)
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    assert invite(api, booking).status_code == 404


def test_a_cancelled_booking_is_a_cancel_without_the_video_link(api, slot, now):
    booking = confirmed(slot, now=now)
    services.booking_cancel(booking_id=booking.pk, actor="student", now=now)
    response = invite(api, booking)
    assert response.status_code == 200
    assert "method=CANCEL" in response["Content-Type"]
    cal = icalendar.Calendar.from_ical(response.content)
    assert cal["METHOD"] == "CANCEL"
    assert cal.walk("VEVENT")[0]["STATUS"] == "CANCELLED"
    assert b"meet.example.com" not in response.content
    (cancel_mail,) = [m for m in to("sam@example.com") if m.subject.startswith("Cancelled")]
    assert "meet.example.com" not in everything(cancel_mail)


@pytest.mark.parametrize("outcome", [BookingStatus.CONFIRMED, BookingStatus.COMPLETED])
def test_a_confirmed_or_completed_booking_is_the_event(api, slot, now, outcome):
    booking = confirmed(slot, now=now)
    store(Booking, booking.pk, status=outcome)
    response = invite(api, booking)
    assert response.status_code == 200
    assert "method=REQUEST" in response["Content-Type"]
    event = icalendar.Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert event["STATUS"] == "CONFIRMED"
    assert str(event["LOCATION"]) == "https://meet.example.com/room"


# --- 4. the invite's bytes are a valid UTF-8 calendar ----------------------------------------

ZOE = "Zoë Łukasiewicz 山田"
TUTOR_NAME = "Ådá Párk 山田先生"
REMOTE_TITLE = "Python für Anfänger — 初級 🐍"
IN_PERSON_TITLE = "Python en persona — ñandú"
NOTE = "Dekoratoren, bitte 🎉🐍 — und Generatoren ✨ " * 4 + "\nzweite Zeile: ünïcödé ☃"


@pytest.fixture
def everywhere(tutor, in_person, remote):
    """Non-ASCII in every stored string an invite shows."""
    store(Tutor, tutor.pk, display_name=TUTOR_NAME)
    store(Offering, remote.pk, title=REMOTE_TITLE)
    store(Offering, in_person.pk, title=IN_PERSON_TITLE, place_name="Café Zoë ☕",
          place_address="Łódź Straße 5, New York, NY 10018")  # fmt: skip


def assert_valid_calendar(body: bytes) -> tuple[Any, Any]:
    assert body.endswith(b"\r\n")
    lines = body.split(b"\r\n")[:-1]
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    for line in lines:
        assert len(line) <= 75, line
        line.decode("utf-8")  # no character is split across a fold
    text = body.decode("utf-8")
    return icalendar.Calendar.from_ical(body), vobject.readOne(text)


@pytest.mark.parametrize("mode", ["remote", "in_person"])
def test_the_sent_invite_is_utf8_crlf_and_folded_in_both_parts_and_both_parsers(
    slot, now, everywhere, mode
):
    booking = held(slot, now=now, mode=mode)
    store(Booking, booking.pk, student_name=ZOE, notes=NOTE)
    mail.outbox.clear()
    services.booking_confirm(booking_id=booking.pk, now=now)
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        found = calendars(message)
        tutor_copy = message.to == ["ada@example.com"]
        # The student's invite is the alternative and the attachment; the tutor's copy
        # (PUBLISH, the feed's event) only an attachment.
        if tutor_copy:
            assert set(found) == {"attachment"}
            parts, (att_part, att) = [found["attachment"][0]], found["attachment"]
        else:
            assert set(found) == {"alternative", "attachment"}
            (alt_part, alt), (att_part, att) = found["alternative"], found["attachment"]
            assert alt == att
            parts = [alt_part, att_part]
        for part in parts:
            assert part.get_content_charset() == "utf-8"
            assert part.get_param("method") == ("PUBLISH" if tutor_copy else "REQUEST")
        assert att_part.get_content_type() == "application/ics"
        cal, other = assert_valid_calendar(att)
        (event,) = cal.walk("VEVENT")
        title = REMOTE_TITLE if mode == "remote" else IN_PERSON_TITLE
        summary = f"{title} with {ZOE if tutor_copy else TUTOR_NAME}"
        assert event["SUMMARY"] == summary
        assert other.vevent.summary.value == summary
        if not tutor_copy:
            assert event["ATTENDEE"].params["CN"] == ZOE
            assert other.vevent.attendee.params["CN"] == [ZOE]
        assert other.vevent.organizer.params["CN"] == [TUTOR_NAME]
        if mode == "in_person":
            where = "Café Zoë ☕, Łódź Straße 5, New York, NY 10018"
            assert event["LOCATION"] == where and other.vevent.location.value == where
        description = other.vevent.description.value
        assert str(event["DESCRIPTION"]) == description
        if tutor_copy:
            assert "🎉🐍" in description and "zweite Zeile: ünïcödé ☃" in description


def test_the_invite_download_is_utf8_too(api, slot, now, everywhere):
    booking = held(slot, now=now)
    store(Booking, booking.pk, student_name=ZOE)
    services.booking_confirm(booking_id=booking.pk, now=now)
    response = invite(api, booking)
    assert "charset=utf-8" in response["Content-Type"]
    cal, other = assert_valid_calendar(response.content)
    assert cal.walk("VEVENT")[0]["ATTENDEE"].params["CN"] == ZOE
    assert other.vevent.attendee.params["CN"] == [ZOE]


# --- 5. one story per booking ------------------------------------------------------------------


@pytest.fixture
def delay(settings):
    settings.BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES = 10
    return timedelta(minutes=10)


def expiry(booking: Booking) -> datetime:
    assert booking.hold_expires_at is not None
    return booking.hold_expires_at


def kinds(booking: Booking, state: str) -> list[tuple[str, str]]:
    rows = booking.notifications.filter(state=state).exclude(kind=NotificationKind.REMINDER)
    return sorted(rows.values_list("kind", "recipient"))


def test_late_money_that_confirms_is_the_only_story_the_student_hears(slot, now, delay):
    booking = held(slot, now=now)
    expired_at = expiry(booking)
    services.booking_expire(booking_id=booking.pk, now=expired_at)
    mail.outbox.clear()
    services.booking_confirm(booking_id=booking.pk, now=expired_at + timedelta(seconds=13))
    notifications.sweep(now=expired_at + delay + timedelta(minutes=1))
    subjects = [m.subject for m in to("sam@example.com")]
    assert len(subjects) == 1 and subjects[0].startswith("Confirmed:")
    assert kinds(booking, NotificationState.VOID) == [("hold_expired", "student")]


def test_late_money_that_is_refunded_replaces_the_hold_expired_email(slot, now, delay):
    booking = held(slot, now=now)
    expired_at = expiry(booking)
    services.booking_expire(booking_id=booking.pk, now=expired_at)
    mail.outbox.clear()
    services.booking_late_payment_refunded(
        booking_id=booking.pk, amount=9000, why="taken", now=expired_at + timedelta(minutes=2)
    )
    notifications.sweep(now=expired_at + delay + timedelta(minutes=1))
    (message,) = mail.outbox
    assert message.subject.startswith("Refunded:")
    assert "Nothing was charged" not in message.body


def test_refused_money_replaces_the_hold_expired_email(slot, now, delay):
    booking = held(slot, now=now)
    expired_at = expiry(booking)
    services.booking_expire(booking_id=booking.pk, now=expired_at)
    mail.outbox.clear()
    booking.refresh_from_db()
    notifications.notify_payment_refused(
        booking, now=expired_at, amount=4500, currency="usd", why="wrong_amount"
    )
    notifications.sweep(now=expired_at + delay + timedelta(minutes=1))
    assert [m.subject.split(":")[0] for m in to("sam@example.com")] == ["Refunded"]


def test_an_unpaid_hold_is_told_once_after_the_delay(slot, now, delay):
    booking = held(slot, now=now)
    expired_at = expiry(booking)
    services.bookings_expire_holds(now=expired_at)
    services.bookings_expire_holds(now=expired_at + timedelta(minutes=1))
    mail.outbox.clear()
    for minutes in (5, 10, 11, 30):
        notifications.sweep(now=expired_at + timedelta(minutes=minutes))
    (message,) = mail.outbox
    assert message.subject.startswith("Your hold on")


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.mailbackends.FlakyBackend"
    FlakyBackend.errors = []
    yield FlakyBackend
    FlakyBackend.errors = []


def test_a_confirmation_held_up_by_the_mail_server_is_not_sent_after_the_cancellation(
    slot, now, flaky
):
    booking = held(slot, now=now)
    flaky.errors = [smtplib.SMTPServerDisconnected("down"), OSError("down")]
    services.booking_confirm(booking_id=booking.pk, now=now)
    mail.outbox.clear()
    services.booking_cancel(booking_id=booking.pk, actor="tutor", now=now)
    notifications.sweep(now=now + timedelta(hours=1))
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == ["Cancelled", "Cancelled"]
    assert kinds(booking, NotificationState.VOID) == [
        ("confirmed", "student"),
        ("confirmed", "tutor"),
    ]


def test_an_older_move_held_up_by_the_mail_server_is_not_sent_after_the_newer_one(
    slot, tutor, remote, now, flaky
):
    booking = confirmed(slot, now=now)
    first = make_slot(tutor, now + timedelta(days=4), remote=remote)
    second = make_slot(tutor, now + timedelta(days=5), remote=remote)
    flaky.errors = [OSError("down"), OSError("down")]
    services.booking_reschedule(booking_id=booking.pk, slot_id=first.pk, now=now)
    mail.outbox.clear()
    services.booking_reschedule(booking_id=booking.pk, slot_id=second.pk, now=now)
    notifications.sweep(now=now + timedelta(hours=1))
    (student,) = to("sam@example.com")
    (_, body) = calendars(student)["alternative"]
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == second.start
    assert event.decoded("SEQUENCE") == 2


def test_a_reminder_for_a_cancelled_booking_is_not_sent(slot, now):
    booking = confirmed(slot, now=now)
    reminder = booking.notifications.filter(kind=NotificationKind.REMINDER)[0]
    store(Booking, booking.pk, status=BookingStatus.CANCELLED)
    mail.outbox.clear()
    assert notifications.deliver(reminder.pk, now=reminder.due_at) == "void"
    assert mail.outbox == []


# --- 6. refused money --------------------------------------------------------------------------

PLAIN = {
    "wrong_amount": "the amount paid was not the session's price",
    "wrong_currency": "in a different currency",
    "not_its_checkout": "did not come through this booking's own checkout",
}


@pytest.mark.parametrize("why", list(PLAIN))
def test_refused_money_tells_the_student_and_the_tutor_in_plain_words(slot, now, why):
    booking = confirmed(slot, now=now)
    mail.outbox.clear()
    notifications.notify_payment_refused(booking, now=now, amount=4500, currency="eur", why=why)
    (student,) = to("sam@example.com")
    (tutor_mail,) = to("ada@example.com")
    assert student.subject.startswith("Refunded: a payment for your session on")
    assert tutor_mail.subject.startswith("Refunded: a payment from Sam Student for")
    for message in (student, tutor_mail):
        assert PLAIN[why] in message.body
        assert "€45.00" in message.body and "refunded" in message.body
        assert "stays confirmed" in message.body
        html = message.alternatives[0]
        assert html.mimetype == "text/html" and PLAIN[why].replace("'", "&#x27;") in html.content
        assert not calendars(message)
        assert_headers_intact(message)
    assert booking.manage_url in student.body
    assert booking.manage_token not in everything(tutor_mail)


def test_each_distinct_refusal_tells_once(slot, now):
    booking = confirmed(slot, now=now)
    mail.outbox.clear()
    for _ in range(2):
        notifications.notify_payment_refused(
            booking, now=now, amount=4500, currency="usd", why="wrong_amount"
        )
    notifications.notify_payment_refused(
        booking, now=now, amount=100, currency="usd", why="wrong_amount"
    )
    assert len(to("sam@example.com")) == 2 and len(to("ada@example.com")) == 2


def test_a_refusal_for_a_released_hold_says_nothing_is_booked(slot, now):
    booking = held(slot, now=now)
    store(Booking, booking.pk, status=BookingStatus.CANCELLED, hold_expires_at=None)
    booking.refresh_from_db()
    mail.outbox.clear()
    notifications.notify_payment_refused(
        booking, now=now, amount=9000, currency="gbp", why="wrong_currency"
    )
    (student,) = to("sam@example.com")
    (tutor_mail,) = to("ada@example.com")
    assert "the time has been released" in student.body
    assert "Nothing is booked" in tutor_mail.body
    assert "meet.example.com" not in everything(student)


# --- headers beyond the subject ----------------------------------------------------------------


def test_message_ids_are_well_formed_unique_and_stable_per_row(slot, now, settings):
    settings.PUBLIC_BASE_URL = "http://[::1]:8000"
    booking = confirmed(slot, now=now)
    ids = [m.extra_headers["Message-ID"] for m in mail.outbox]
    assert len(set(ids)) == len(ids) == 2
    for mid in ids:
        assert re.fullmatch(r"<[A-Za-z0-9.\-]+@[A-Za-z0-9.\-]+>", mid), mid
    # Stored on the row, random (not the site's address: [::1] is not a domain).
    assert sorted(ids) == sorted(
        f"<{n.message_id}>" for n in booking.notifications.filter(kind=NotificationKind.CONFIRMED)
    )
    row = booking.notifications.filter(kind=NotificationKind.CONFIRMED)[0]
    again = notifications.build_message(row, now=now).extra_headers["Message-ID"]
    assert again in ids
