"""The tutor's dashboard: upcoming, past and cancelled sessions, search by student, pages,
earnings by month; and the booking page's address, which emails link to."""

import html as htmllib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings.models import Booking, BookingStatus, Offering, Tutor
from tests.conftest import add_offerings, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


def session(
    tutor: Tutor,
    offering: Offering,
    start: datetime,
    *,
    name: str = "Sam Student",
    email: str = "sam@example.com",
    status: str = BookingStatus.CONFIRMED,
    confirmed_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    refund: int = 0,
    paid: bool = True,
) -> Booking:
    """A booking row as the flows leave it (the flows themselves are tested elsewhere)."""
    slot = make_slot(tutor, start, remote=offering)
    return Booking.objects.create(
        tutor=tutor,
        slot=slot,
        offering=offering,
        mode=offering.mode,
        student_name=name,
        student_email=email,
        price_amount=offering.price_amount,
        currency=offering.currency,
        status=status,
        confirmed_at=(confirmed_at or start - timedelta(days=3)) if paid else None,
        cancelled_at=cancelled_at,
        refund_amount=refund,
        hold_expires_at=start if status == BookingStatus.PENDING_PAYMENT else None,
    )


def names(page: str) -> list[str]:
    """The students the sessions list shows, in order (each row's link to the booking)."""
    page = page.split('id="sessions-heading"')[1].split('id="earnings-heading"')[0]
    return re.findall(r'href="/tutor/bookings/[^"]+/"><strong>([^<]+)</strong>', page)


def text(response: Any) -> str:
    return htmllib.unescape(response.content.decode())


def test_past_and_cancelled_sessions_have_their_own_lists(tutor_client, tutor, remote, now):
    session(tutor, remote, now - timedelta(days=3), name="Pat Past")
    session(tutor, remote, now - timedelta(days=9), name="Olga Older", status="completed")
    session(
        tutor,
        remote,
        now + timedelta(days=2),
        name="Cora Cancelled",
        status=BookingStatus.CANCELLED,
        cancelled_at=now - timedelta(days=1),
        refund=9000,
    )
    session(tutor, remote, now + timedelta(days=1), name="Una Upcoming")
    # A hold the student dropped before paying is no session.
    session(
        tutor,
        remote,
        now + timedelta(days=4),
        name="Hal Hold",
        status=BookingStatus.CANCELLED,
        paid=False,
    )

    assert names(tutor_client.get("/tutor/").content.decode()) == ["Una Upcoming"]
    past = tutor_client.get("/tutor/?show=past").content.decode()
    assert names(past) == ["Pat Past", "Olga Older"]  # the latest first
    assert "Completed" in past
    cancelled = tutor_client.get("/tutor/?show=cancelled").content.decode()
    assert names(cancelled) == ["Cora Cancelled"]
    everything = tutor_client.get("/tutor/?show=all").content.decode()
    assert names(everything) == ["Cora Cancelled", "Una Upcoming", "Pat Past", "Olga Older"]
    assert 'aria-current="page">All</a>' in everything


def test_the_search_finds_a_student_by_name_or_email_in_any_case(tutor_client, tutor, remote, now):
    session(tutor, remote, now - timedelta(days=2), name="Sam Student", email="sam@example.com")
    session(tutor, remote, now - timedelta(days=3), name="Kim Lee", email="kim@school.edu")
    session(tutor, remote, now - timedelta(days=4), name="Zoë Ångström", email="zoe@example.com")

    def found(query: str) -> list[str]:
        response = tutor_client.get("/tutor/", {"show": "past", "q": query})
        return names(text(response))

    assert found("sAM") == ["Sam Student"]
    assert found("SCHOOL.EDU") == ["Kim Lee"]
    assert found("example.com") == ["Sam Student", "Zoë Ångström"]
    assert found("Ångström") == ["Zoë Ångström"]
    assert found("nobody") == []
    assert found("%") == []  # a wildcard is a character like any other
    page = text(tutor_client.get("/tutor/", {"show": "past", "q": "nobody"}))
    assert "No session with a student matching “nobody”." in page


def test_a_search_with_control_characters_is_refused_kindly(tutor_client, tutor, remote, now):
    session(tutor, remote, now - timedelta(days=2))
    response = tutor_client.get("/tutor/", {"show": "past", "q": "sam\x00"})
    assert response.status_code == 200
    assert "Remove the invisible control character U+0000." in text(response)
    assert names(text(response)) == ["Sam Student"]  # the list, unfiltered
    huge = tutor_client.get("/tutor/", {"q": "a" * 10_000})
    assert huge.status_code == 200
    assert "Ensure this value has at most 254 characters" in text(huge)


def test_the_lists_come_a_page_at_a_time_in_a_constant_number_of_queries(
    tutor_client, tutor, remote, now
):
    def page_queries(path: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = tutor_client.get(path)
        return len(queries), response.content.decode()

    for i in range(3):
        session(tutor, remote, now - timedelta(days=1 + i), name=f"Student {i:02}")
    few, _ = page_queries("/tutor/?show=past&q=student")
    for i in range(3, 30):
        session(tutor, remote, now - timedelta(days=1 + i), name=f"Student {i:02}")
    many, first = page_queries("/tutor/?show=past&q=student")
    assert many == few
    assert len(names(first)) == 25
    assert "30 sessions for “student”, page 1 of 2." in htmllib.unescape(first)
    assert 'href="?show=past&amp;q=student&amp;page=2" rel="next"' in first
    second = tutor_client.get("/tutor/?show=past&q=student&page=2").content.decode()
    assert names(second) == [f"Student {i:02}" for i in range(25, 30)]
    # A page beyond the last, or not a number, still answers with a page.
    assert tutor_client.get("/tutor/?show=past&page=99999999999999999999").status_code == 200
    assert tutor_client.get("/tutor/?show=past&page=1e309").status_code == 200


def test_upcoming_sessions_of_many_students_stay_a_few_queries(tutor_client, tutor, remote, now):
    with CaptureQueriesContext(connection) as queries:
        tutor_client.get("/tutor/")
    empty = len(queries)
    for i in range(12):
        session(tutor, remote, now + timedelta(days=1, hours=i), name=f"Student {i}")
    with CaptureQueriesContext(connection) as queries:
        page = tutor_client.get("/tutor/").content.decode()
    assert len(names(page)) == 12
    assert len(queries) <= empty + 1  # the page's rows, once there are any


def test_earnings_are_paid_minus_refunded_per_month_in_the_tutors_zone(
    tutor_client, tutor, remote, now
):
    euros = Offering.objects.create(
        tutor=tutor,
        mode="remote",
        title="Python (EUR)",
        duration_minutes=60,
        price_amount=8000,
        currency="eur",
        video_url="https://meet.example.com/eur",
    )
    # 03:00 UTC on December 1 is still November 30 in New York: November's money.
    late_november = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    session(tutor, remote, now - timedelta(days=1), confirmed_at=late_november)
    session(tutor, remote, now - timedelta(days=2), confirmed_at=now - timedelta(hours=1))
    session(
        tutor,
        remote,
        now + timedelta(days=3),
        status=BookingStatus.CANCELLED,
        confirmed_at=late_november - timedelta(days=2),
        cancelled_at=now - timedelta(hours=2),
        refund=9000,
    )
    session(tutor, euros, now - timedelta(days=3), confirmed_at=now - timedelta(hours=3))
    # Unpaid holds and holds dropped before paying are no money.
    session(
        tutor, remote, now + timedelta(days=4), status=BookingStatus.PENDING_PAYMENT, paid=False
    )
    session(tutor, remote, now + timedelta(days=5), status=BookingStatus.CANCELLED, paid=False)

    page = text(tutor_client.get("/tutor/"))
    table = page.split('id="earnings-heading"')[1]
    rows = [
        re.sub(r"<[^>]+>", " ", row).split()
        for row in re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", table)
    ]
    assert rows == [
        ["December", "2026", "USD", "$90.00", "$90.00", "$0.00"],
        ["December", "2026", "EUR", "€80.00", "€0.00", "€80.00"],
        ["November", "2026", "USD", "$180.00", "$0.00", "$180.00"],
    ]


def test_the_booking_page_has_one_address_for_emails_and_only_its_tutor_opens_it(
    client, tutor, remote, now, frozen, make_tutor
):
    booking = session(tutor, remote, now + timedelta(days=2))
    path = f"/tutor/bookings/{booking.pk}/"
    assert reverse("web:tutor-booking", args=[booking.pk]) == path
    # Signed out: the sign-in page, then back to the booking.
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"
    client.force_login(tutor.user)
    assert client.get(path).status_code == 200
    other = make_tutor(slug="bo")
    add_offerings(other)
    client.force_login(other.user)
    assert client.get(path).status_code == 404
    assert client.get(f"/tutor/bookings/{booking.pk}/move/").status_code == 404
    assert client.get("/tutor/?show=all").content.decode().count("/tutor/bookings/") == 0


def test_a_new_tutor_is_told_what_to_set_up_first(client, make_tutor, frozen, now):
    tutor = make_tutor(slug="new")
    client.force_login(tutor.user)
    steps = text(client.get("/tutor/")).split('id="start-heading"')[1].split("</ol>")[0]
    assert 'href="/tutor/offerings/">Add a session type and its price' in steps
    assert 'href="/tutor/availability/#add-rule">Add the weekly times you teach' in steps
    remote, _ = add_offerings(tutor)
    make_slot(tutor, now + timedelta(days=2), remote=remote)
    assert "data-getting-started" not in client.get("/tutor/").content.decode()


def test_an_unknown_list_name_shows_the_upcoming_sessions(tutor_client, tutor, remote, now):
    session(tutor, remote, now + timedelta(days=1), name="Una Upcoming")
    response = tutor_client.get("/tutor/", {"show": "<script>x</script>" * 5})
    assert response.status_code == 200
    assert names(response.content.decode()) == ["Una Upcoming"]
    assert b"<script>x" not in response.content
    assert b"error-summary" not in response.content
