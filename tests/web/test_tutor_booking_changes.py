"""The tutor moves a booked session, or asks the student to pick another time."""

import email
import html as htmllib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone
from icalendar import Calendar

from bookings import notifications
from bookings.models import BookingStatus, Notification
from tests.conftest import add_offerings, make_slot

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


@pytest.fixture
def booked(frozen, slot, now):
    """Confirmed, remote, Friday December 4 at 10:00 in New York."""
    booking = confirm(hold_slot(slot, now=now), now=now)
    mail.outbox.clear()
    return booking


@pytest.fixture
def later(tutor, remote, in_person, now):
    """Open, Saturday December 5 at 10:00 in New York."""
    return make_slot(tutor, now + timedelta(days=3), remote=remote, in_person=in_person)


@pytest.fixture
def emails(django_capture_on_commit_callbacks):
    """Run what commits queue (the emails' delivery) while the block runs."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def to_student():
    return [m for m in mail.outbox if m.to == ["sam@example.com"]]


def invite(message):
    parsed = email.message_from_bytes(message.message().as_bytes())
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return part.get_param("method"), Calendar.from_ical(payload)
    raise AssertionError("no invite")


# --- moving -------------------------------------------------------------------------------------


def test_the_tutor_moves_a_session_and_the_student_gets_the_new_invite(
    tutor_client, booked, later, emails
):
    url = f"/tutor/bookings/{booked.pk}/move/"
    assert f'href="{url}"' in tutor_client.get(f"/tutor/bookings/{booked.pk}/").content.decode()
    page = tutor_client.get(url).content.decode()
    assert "Saturday, December 5" in page
    assert f'value="{later.pk}"' in page
    assert f'value="{booked.slot_id}"' not in page  # where it is now

    with emails():
        response = tutor_client.post(url, {"slot": str(later.pk)}, follow=True)
    assert response.redirect_chain[-1] == (f"/tutor/bookings/{booked.pk}/", 302)
    assert (
        "Moved to Sat, Dec 5, 10:00 AM (America/New_York). Sam Student gets the updated invite"
        in htmllib.unescape(response.content.decode())
    )
    booked.refresh_from_db()
    assert booked.slot_id == later.pk
    assert booked.sequence == 1
    event = booked.events.last()
    assert (event.actor, event.reason) == ("tutor", "rescheduled")
    (message,) = to_student()
    assert "Ada Park moved your session to a new time." in message.body
    method, calendar = invite(message)
    assert method == "REQUEST"
    (vevent,) = calendar.walk("VEVENT")
    assert int(vevent["SEQUENCE"]) == 1
    assert vevent.decoded("DTSTART") == later.start


def test_the_tutor_may_move_a_session_the_student_no_longer_can(
    tutor_client, booked, later, frozen
):
    frozen.shift(timedelta(hours=40))  # 8 h before: past the student's 24 h line
    tutor_client.post(f"/tutor/bookings/{booked.pk}/move/", {"slot": str(later.pk)})
    booked.refresh_from_db()
    assert booked.slot_id == later.pk


def test_a_time_that_is_not_open_is_refused_in_place(tutor_client, booked, later, make_tutor):
    other = make_tutor(slug="bo")
    remote, _ = add_offerings(other)
    theirs = make_slot(other, later.start, remote=remote)
    url = f"/tutor/bookings/{booked.pk}/move/"
    for value in (str(theirs.pk), str(booked.slot_id), "9" * 30, "x"):
        response = tutor_client.post(url, {"slot": value})
        assert response.status_code == 200
        assert b"That time is no longer open: pick another one." in response.content
    booked.refresh_from_db()
    assert booked.slot_id != later.pk and booked.sequence == 0


def test_a_session_that_started_cannot_be_moved(tutor_client, booked, later, frozen):
    frozen.shift(timedelta(days=2, minutes=5))
    response = tutor_client.get(f"/tutor/bookings/{booked.pk}/move/", follow=True)
    assert b"Only a confirmed session that has not started can be moved." in response.content


def test_another_tutor_cannot_move_the_session(client, booked, later, make_tutor):
    other = make_tutor(slug="bo")
    client.force_login(other.user)
    url = f"/tutor/bookings/{booked.pk}/move/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"slot": str(later.pk)}).status_code == 404
    booked.refresh_from_db()
    assert booked.slot_id != later.pk


# --- asking the student -------------------------------------------------------------------------


def ask(client, booking, message=""):
    return client.post(
        f"/tutor/bookings/{booking.pk}/", {"action": "ask", "message": message}, follow=True
    )


def test_asking_the_student_sends_them_a_link_to_pick_another_time(
    tutor_client, client, booked, later, emails
):
    with emails():
        response = ask(tutor_client, booked, "Something came up on Friday.\nSorry!")
    assert b"Asked Sam Student by email to pick another time." in response.content
    (message,) = mail.outbox  # the student's only: the tutor knows
    assert message.to == ["sam@example.com"]
    assert message.subject.startswith("Ada Park asks you to pick another time")
    link = f"{booked.manage_url}reschedule/"
    assert link in message.body
    assert "Something came up on Friday.\nSorry!" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html_body = message.alternatives[0][0]
    assert isinstance(html_body, str)
    assert f'href="{link}"' in html_body
    event = booked.events.last()
    assert event.reason == "asked the student to pick another time"
    assert event.data == {"message": "Something came up on Friday.\nSorry!"}

    # The link opens the student's reschedule page, with the other time on offer.
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert str(later.pk) in page.content.decode()


def test_asking_twice_sends_one_email(tutor_client, booked, emails):
    with emails():
        ask(tutor_client, booked)
        response = ask(tutor_client, booked)
    assert b"You already asked Sam Student to pick another time." in response.content
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(kind="pick_another_time").count() == 1


def test_the_request_is_dropped_if_the_session_moves_first(tutor_client, booked, later):
    ask(tutor_client, booked)  # owed, not sent: no commit hook runs here
    tutor_client.post(f"/tutor/bookings/{booked.pk}/move/", {"slot": str(later.pk)})
    notifications.sweep(now=timezone.now())
    row = Notification.objects.get(kind="pick_another_time")
    assert row.state == "void"
    assert not [m for m in mail.outbox if "pick another time" in m.subject]


def test_asking_is_refused_once_the_student_can_no_longer_move_it(tutor_client, booked, frozen):
    frozen.shift(timedelta(hours=30))  # 18 h before the session
    html = htmllib.unescape(tutor_client.get(f"/tutor/bookings/{booked.pk}/").content.decode())
    assert "Students can move a session up to 24 hours before it starts" in html
    response = ask(tutor_client, booked)
    assert b"this one is closer than that: move it yourself or cancel it." in response.content
    assert not Notification.objects.filter(kind="pick_another_time").exists()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Bell\x07", "Remove the invisible control character U+0007."),
        ("x" * 2001, "Ensure this value has at most 2000 characters"),
    ],
)
def test_a_message_the_email_cannot_carry_is_refused(tutor_client, booked, message, error):
    response = ask(tutor_client, booked, message)
    assert error in htmllib.unescape(response.content.decode())
    assert not Notification.objects.filter(kind="pick_another_time").exists()


def test_another_tutor_cannot_ask_about_the_session(client, booked, make_tutor):
    other = make_tutor(slug="bo")
    client.force_login(other.user)
    response = client.post(f"/tutor/bookings/{booked.pk}/", {"action": "ask"})
    assert response.status_code == 404
    assert not Notification.objects.filter(kind="pick_another_time").exists()
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED
