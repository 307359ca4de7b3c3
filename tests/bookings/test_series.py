"""Weekly series: "every Tuesday 18:00 for N weeks", held all or nothing, paid in one
Stripe Checkout, confirmed together, invited as one recurring event, cancelled week by
week (bookings/series.py)."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import icalendar
import pytest
import recurring_ical_events  # type: ignore[import-untyped]
import vobject
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from ical.calendar_stream import IcsCalendarStream

from bookings import notifications, services
from bookings.models import (
    Booking,
    BookingSeries,
    BookingStatus,
    Notification,
    NotificationKind,
    NotificationState,
    Slot,
)
from payments.models import Payment, PaymentStatus, Refund
from tests.payments.conftest import deliver, fake_stripe, stripe  # noqa: F401
from tests.payments.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db

# A Wednesday in February: ten Tuesdays from the next one cross New York's change to
# daylight-saving time (Sunday, March 14, 2027).
NOW = datetime(2027, 2, 10, 15, 0, tzinfo=UTC)
FIRST = datetime(2027, 2, 16, 23, 0, tzinfo=UTC)  # Tue Feb 16, 18:00 EST


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def tuesdays(settings: Any, tutor: Any, remote: Any, now: datetime) -> list[Slot]:
    """One remote slot every Tuesday 18:00–19:00 New York for twelve weeks."""
    settings.SLOT_HORIZON_WEEKS = 12
    services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[2],
        start_time=time(18, 0),
        end_time=time(19, 0),
        offerings=[remote],
    )
    return list(Slot.objects.filter(tutor=tutor).order_by("start"))


@pytest.fixture
def fake(request: Any) -> FakeStripe:
    """The payments tests' fake Stripe, configured (their `stripe` fixture)."""
    fixture: FakeStripe = request.getfixturevalue("stripe")
    return fixture


@pytest.fixture
def on_commit_now(monkeypatch: Any) -> None:
    """The test's transaction never commits: run on_commit hooks at once."""
    from bookings import notifications

    monkeypatch.setattr(
        notifications.transaction, "on_commit", lambda fn, using=None, robust=False: fn()
    )


def ask(
    api: Any, first: Slot, *, weeks: int = 10, skip: tuple[str, ...] = (), email: str = ""
) -> Any:
    return api.post(
        "/api/series/",
        {
            "slot": first.pk,
            "mode": "remote",
            "weeks": weeks,
            "skip": list(skip),
            "student_name": "Sam Student",
            "student_email": email or "sam@example.com",
            "student_timezone": "America/New_York",
        },
        format="json",
    )


def expected_starts(skip_weeks: set[int]) -> list[datetime]:
    """Tuesdays 18:00 New York: 23:00 UTC before March 14, 22:00 UTC after it."""
    starts = []
    for week in range(1, 11):
        day = FIRST + timedelta(weeks=week - 1)
        if day > datetime(2027, 3, 14, tzinfo=UTC):
            day -= timedelta(hours=1)
        if week not in skip_weeks:
            starts.append(day)
    return starts


def instants_three_ways(body: bytes) -> list[list[datetime]]:
    """The series' sessions, in UTC, as three calendar parsers expand its recurrence."""
    text = body.decode("utf-8")
    window = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))

    cal = icalendar.Calendar.from_ical(body)
    by_icalendar = [
        e.decoded("DTSTART").astimezone(UTC) for e in recurring_ical_events.of(cal).between(*window)
    ]

    vevent = vobject.readOne(text).vevent
    by_vobject = [d.astimezone(UTC) for d in vevent.getrruleset(addRDate=True)]

    strict = IcsCalendarStream.calendar_from_ics(text)
    by_ical = [e.dtstart.astimezone(UTC) for e in strict.timeline]  # type: ignore[union-attr]

    return [sorted(by_icalendar), sorted(by_vobject), sorted(by_ical)]


def test_a_ten_week_series_with_one_taken_week_holds_nothing_and_names_it(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe
) -> None:
    services.booking_hold(
        slot_id=tuesdays[3].pk,
        mode="remote",
        student_name="Other",
        student_email="other@example.com",
        now=NOW,
    )

    response = ask(api, tuesdays[0])

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "series_conflict"
    assert [(c["week"], c["date"], c["reason"]) for c in body["conflicts"]] == [
        (4, "2027-03-09", "booked")
    ]
    assert not BookingSeries.objects.exists()
    assert not Booking.objects.filter(student_email="sam@example.com").exists()
    assert len(fake.requests_to("POST", "/v1/checkout/sessions")) == 1  # the other's only


def test_the_acceptance_path_hold_pay_invite_cancel_one_week(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    services.booking_hold(
        slot_id=tuesdays[3].pk,
        mode="remote",
        student_name="Other",
        student_email="other@example.com",
        now=NOW,
    )
    before = len(fake.requests_to("POST", "/v1/checkout/sessions"))
    assert ask(api, tuesdays[0]).status_code == 409

    # Dropping week 4: nine held, one checkout for all nine.
    response = ask(api, tuesdays[0], skip=("2027-03-09",))
    assert response.status_code == 201, response.content
    body = response.json()
    series = BookingSeries.objects.get()
    held = list(series.bookings.order_by("series_week"))
    assert [b.series_week for b in held] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert {b.status for b in held} == {BookingStatus.PENDING_PAYMENT}
    assert [b.slot.start for b in held] == expected_starts({4})
    assert body["price"] == {"amount": 81000, "currency": "usd"}
    assert len(body["sessions"]) == 9
    created = fake.requests_to("POST", "/v1/checkout/sessions")[before:]
    assert len(created) == 1
    (item,) = created[0].params["line_items"]
    assert (item["quantity"], item["price_data"]["unit_amount"]) == ("9", "9000")
    payment = Payment.objects.get(series=series)
    assert body["payment_url"] == payment.checkout_url
    assert payment.amount == 81000

    # Paid: all nine confirmed by the one webhook; a replay changes nothing.
    fake.complete(payment.checkout_session_id or "")
    event = fake.session_event("checkout.session.completed", payment.checkout_session_id or "")
    assert deliver(event).status_code == 200
    assert deliver(event).status_code == 200
    assert set(series.bookings.values_list("status", flat=True)) == {BookingStatus.CONFIRMED}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    # One confirmation to each side (with the series invite), reminders per session.
    confirmations = Notification.objects.filter(
        booking__series=series, kind=NotificationKind.CONFIRMED
    )
    assert confirmations.count() == 2
    reminders = Notification.objects.filter(booking__series=series, kind=NotificationKind.REMINDER)
    assert reminders.count() == 9 * 2
    student_mail = [m for m in mail.outbox if m.to == ["sam@example.com"]]
    assert len(student_mail) == 1

    # One series in the calendar, nine sessions at 18:00 New York on both sides of DST.
    token = body["series_url"].rstrip("/").rsplit("/", 1)[1]
    invite = api.get(f"/api/series/{token}/invite.ics")
    assert invite.status_code == 200
    assert "method=REQUEST" in invite["Content-Type"]
    parsers = ("icalendar", "vobject", "ical")
    for parser, instants in zip(parsers, instants_three_ways(invite.content), strict=True):
        assert (parser, instants) == (parser, expected_starts({4}))
    sequence = BookingSeries.objects.get().sequence

    # Week 6 cancelled: only it is refunded, and the calendar shows the exception.
    week6 = series.bookings.get(series_week=6)
    cancelled = api.post(f"/api/bookings/{week6.manage_token}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["refund"] == {"amount": 9000, "currency": "usd"}
    (refund,) = Refund.objects.all()
    assert (refund.booking_id, refund.amount, refund.payment_id) == (week6.pk, 9000, payment.pk)
    stripe_refunds = fake.requests_to("POST", "/v1/refunds")
    assert [r.params["amount"] for r in stripe_refunds] == ["9000"]
    statuses = dict(series.bookings.values_list("series_week", "status"))
    assert statuses.pop(6) == BookingStatus.CANCELLED
    assert set(statuses.values()) == {BookingStatus.CONFIRMED}

    invite = api.get(f"/api/series/{token}/invite.ics")
    cal = icalendar.Calendar.from_ical(invite.content)
    (master,) = cal.walk("VEVENT")
    assert int(master.decoded("SEQUENCE")) > sequence
    exdates = master.get("EXDATE")
    exdates = exdates if isinstance(exdates, list) else [exdates]
    excluded = sorted(d.dt.astimezone(UTC) for e in exdates for d in e.dts)
    assert excluded == [expected_starts(set())[3], expected_starts(set())[5]]
    for instants in instants_three_ways(invite.content):
        assert instants == expected_starts({4, 6})
    # The student's cancellation email carries the updated series, not a lone event.
    cancel_mail = [m for m in mail.outbox if m.to == ["sam@example.com"]][-1]
    (attachment,) = cancel_mail.attachments
    invite_sent = attachment.get_payload(decode=True)
    assert b"RRULE:FREQ=WEEKLY;COUNT=10" in invite_sent
    assert b"EXDATE" in invite_sent


def test_moving_one_session_is_an_override_of_that_week(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    body = ask(api, tuesdays[0], weeks=3).json()
    payment = Payment.objects.get()
    fake.complete(payment.checkout_session_id or "")
    deliver(fake.session_event("checkout.session.completed", payment.checkout_session_id or ""))
    week2 = Booking.objects.get(series_week=2)
    services.booking_reschedule(booking_id=week2.pk, slot_id=tuesdays[5].pk, now=NOW)

    token = body["series_url"].rstrip("/").rsplit("/", 1)[1]
    cal = icalendar.Calendar.from_ical(api.get(f"/api/series/{token}/invite.ics").content)
    _, moved = cal.walk("VEVENT")
    assert moved.decoded("RECURRENCE-ID").astimezone(UTC) == tuesdays[1].start
    assert moved.decoded("DTSTART").astimezone(UTC) == tuesdays[5].start
    starts = sorted(
        e.decoded("DTSTART").astimezone(UTC)
        for e in recurring_ical_events.of(cal).between(NOW, NOW + timedelta(weeks=12))
    )
    assert starts == [tuesdays[0].start, tuesdays[2].start, tuesdays[5].start]


def test_a_series_longer_than_the_tutors_cap_is_refused_naming_weeks(
    api: Any, frozen: Any, tuesdays: list[Slot], tutor: Any
) -> None:
    tutor.max_series_weeks = 4
    tutor.save()
    response = ask(api, tuesdays[0], weeks=5)
    assert response.status_code == 400
    assert "weeks" in response.json()["fields"]
    assert not Booking.objects.exists()


def test_a_student_with_another_unpaid_hold_cannot_add_a_series(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe
) -> None:
    services.booking_hold(
        slot_id=tuesdays[11].pk,
        mode="remote",
        student_name="Sam",
        student_email="sam@example.com",
        now=NOW,
    )
    response = ask(api, tuesdays[0], weeks=3)
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_holds"
    assert not BookingSeries.objects.exists()


def test_holding_ten_weeks_runs_as_many_queries_as_holding_two(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe
) -> None:
    def hold(first: Slot, weeks: int, n: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = api.post(
                "/api/series/",
                {
                    "slot": first.pk,
                    "mode": "remote",
                    "weeks": weeks,
                    "student_name": f"Student {n}",
                    "student_email": f"student{n}@example.com",
                },
                format="json",
                REMOTE_ADDR=f"192.0.2.{n}",
            )
        assert response.status_code == 201, response.content
        return len(queries)

    two = hold(tuesdays[0], 2, 1)
    ten = hold(tuesdays[2], 10, 2)

    assert ten == two
    assert Booking.objects.count() == 12


def test_cancelling_the_rest_refunds_each_session_per_policy(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    body = ask(api, tuesdays[0], weeks=3).json()
    payment = Payment.objects.get()
    fake.complete(payment.checkout_session_id or "")
    deliver(fake.session_event("checkout.session.completed", payment.checkout_session_id or ""))
    token = body["series_url"].rstrip("/").rsplit("/", 1)[1]

    response = api.post(f"/api/series/{token}/cancel-rest/")

    assert response.status_code == 200
    assert {s["status"] for s in response.json()["sessions"]} == {"cancelled"}
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [9000, 9000, 9000]
    invite = api.get(f"/api/series/{token}/invite.ics")
    assert "method=CANCEL" in invite["Content-Type"]


def paid_series(api: Any, first: Slot, fake: FakeStripe, *, weeks: int = 3) -> str:
    """A series held and paid through the webhook; its token."""
    body = ask(api, first, weeks=weeks).json()
    payment = Payment.objects.get()
    fake.complete(payment.checkout_session_id or "")
    deliver(fake.session_event("checkout.session.completed", payment.checkout_session_id or ""))
    token: str = body["series_url"].rstrip("/").rsplit("/", 1)[1]
    return token


def test_cancelling_the_rest_emails_student_and_tutor_once_with_the_total(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    token = paid_series(api, tuesdays[0], fake)
    mail.outbox.clear()

    assert api.post(f"/api/series/{token}/cancel-rest/").status_code == 200
    assert api.post(f"/api/series/{token}/cancel-rest/").status_code == 200  # a repeat

    told = Notification.objects.filter(kind=NotificationKind.CANCELLED)
    assert sorted(told.values_list("recipient", flat=True)) == ["student", "tutor"]
    assert len(mail.outbox) == 2
    (student,) = [m for m in mail.outbox if m.to == ["sam@example.com"]]
    assert "You cancelled the remaining 3 sessions of your weekly series." in student.body
    assert "Refund: $270.00" in student.body
    assert student.body.count("(cancelled)") == 3
    assert "the rest of your weekly" in student.subject
    (tutor_mail,) = [m for m in mail.outbox if m.to != ["sam@example.com"]]
    assert "Sam Student cancelled the remaining 3 sessions" in tutor_mail.body
    assert "Refund to the student: $270.00." in tutor_mail.body
    assert not Notification.objects.filter(
        kind=NotificationKind.REMINDER, state=NotificationState.PENDING
    ).exists()


def test_cancelling_one_week_of_a_series_still_emails_about_that_week(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    paid_series(api, tuesdays[0], fake)
    week2 = Booking.objects.get(series_week=2)
    mail.outbox.clear()

    assert api.post(f"/api/bookings/{week2.manage_token}/cancel/").status_code == 200

    told = Notification.objects.filter(kind=NotificationKind.CANCELLED)
    assert set(told.values_list("booking_id", flat=True)) == {week2.pk}
    assert told.count() == 2
    assert len(mail.outbox) == 2


def test_an_unpaid_series_whose_hold_expires_is_told_once(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    ask(api, tuesdays[0], weeks=3)
    later = NOW + timedelta(minutes=settings.BOOKING_HOLD_MINUTES + 1)

    assert services.bookings_expire_holds(now=later) == 3
    assert services.bookings_expire_holds(now=later) == 0

    (row,) = Notification.objects.filter(kind=NotificationKind.HOLD_EXPIRED)
    mail.outbox.clear()
    notifications.sweep(now=later + notifications.hold_expired_email_delay())
    (email,) = mail.outbox
    assert "a weekly series of 3 sessions" in email.body
    assert "weekly series" in email.subject
    row.refresh_from_db()
    assert row.state == NotificationState.SENT


def test_late_money_for_a_series_refunds_the_lost_weeks_in_one_email(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    ask(api, tuesdays[0], weeks=3)
    payment = Payment.objects.get()
    fake.complete(payment.checkout_session_id or "")  # paid, but the webhook is late
    later = NOW + timedelta(minutes=settings.BOOKING_HOLD_MINUTES + 1)
    frozen.shift(later - NOW)
    # The holds lapsed and the checkout could not be closed (it was being paid).
    Booking.objects.update(status=BookingStatus.EXPIRED)
    for slot in tuesdays[1:3]:  # weeks 2 and 3 go to someone else meanwhile
        services.booking_hold(
            slot_id=slot.pk,
            mode="remote",
            student_name="Other",
            student_email=f"other{slot.pk}@example.com",
            now=later,
        )
    mail.outbox.clear()

    deliver(fake.session_event("checkout.session.completed", payment.checkout_session_id or ""))

    statuses = dict(
        Booking.objects.filter(series__isnull=False).values_list("series_week", "status")
    )
    assert statuses == {
        1: BookingStatus.CONFIRMED,
        2: BookingStatus.EXPIRED,
        3: BookingStatus.EXPIRED,
    }
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [9000, 9000]
    (row,) = Notification.objects.filter(kind=NotificationKind.LATE_PAYMENT_REFUNDED)
    assert row.booking.series_week == 2
    late = [m for m in mail.outbox if "arrived too late" in m.subject]
    assert len(late) == 1
    assert "$180.00" in late[0].body


def test_cancelling_an_unpaid_series_closes_its_one_checkout(
    api: Any, frozen: Any, tuesdays: list[Slot], fake: FakeStripe, on_commit_now: None
) -> None:
    """The checkout hangs on week 1, which cancel-rest drops first while the others
    still wait: the session must close when the last one goes, not stay payable."""
    body = ask(api, tuesdays[0], weeks=3).json()
    payment = Payment.objects.get()
    token = body["series_url"].rstrip("/").rsplit("/", 1)[1]

    assert api.post(f"/api/series/{token}/cancel-rest/").status_code == 200

    session_id = payment.checkout_session_id or ""
    expired = fake.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")
    assert len(expired) == 1
    assert fake.session(session_id)["status"] == "expired"
    payment.refresh_from_db()
    assert payment.status == "expired"


# --- PostgreSQL: two series racing for one week ----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_series_racing_for_an_overlapping_week_one_wins_the_other_holds_nothing(
    frozen: Any, tuesdays: list[Slot], fake: FakeStripe
) -> None:
    from rest_framework.test import APIClient

    from tests.bookings.test_concurrency import run_concurrently

    firsts = {0: tuesdays[0], 1: tuesdays[2]}  # weeks 1–4 and 3–6: weeks 3 and 4 overlap

    def attempt(i: int) -> int:
        return ask(APIClient(), firsts[i], weeks=4, email=f"racer{i}@example.com").status_code

    assert sorted(run_concurrently(2, attempt)) == [201, 409]
    (winner,) = BookingSeries.objects.all()
    assert winner.bookings.count() == 4
    assert Booking.objects.count() == 4
