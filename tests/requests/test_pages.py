"""The request pages: the student's form, the private offer page, the tutor's list."""

from datetime import timedelta

import pytest
from django.test import Client

from bookings import time_requests
from bookings.models import Booking, TimeRequest, TimeRequestStatus

from .conftest import times_from

pytestmark = pytest.mark.django_db


def form_data(remote, **extra):
    return {
        "offering": str(remote.pk),
        "student_timezone": "Europe/Berlin",
        "time_1": "2026-12-05T10:00",
        "time_2": "",
        "time_3": "2026-12-06T18:30",
        "student_name": "Sam Student",
        "student_email": "sam@example.com",
        "note": "Pandas, please",
        **extra,
    }


def test_the_tutor_page_links_to_the_request_form(client, frozen, remote):
    page = client.get("/t/ada/", {"tz": "Europe/Berlin"}).content.decode()
    assert 'href="/t/ada/request/?tz=Europe/Berlin"' in page


def test_the_form_takes_times_in_the_students_zone_and_stores_them_in_utc(client, frozen, remote):
    page = client.get("/t/ada/request/", {"tz": "Europe/Berlin"})
    assert page.status_code == 200
    assert 'type="datetime-local"' in page.content.decode()
    sent = client.post("/t/ada/request/", form_data(remote))
    assert sent.status_code == 200, sent.content.decode()[:2000]
    body = sent.content.decode()
    assert "Request sent" in body
    assert "Saturday, December 5, 2026 at 10:00 AM" in body
    row = TimeRequest.objects.get()
    # 10:00 in Berlin is 09:00 UTC in December; the blank second time is skipped.
    assert [t.isoformat() for t in row.times] == [
        "2026-12-05T09:00:00+00:00",
        "2026-12-06T17:30:00+00:00",
    ]
    assert (row.student_timezone, row.student_email) == ("Europe/Berlin", "sam@example.com")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"student_name": "Sam\x1b[31m"}, "control character"),
        ({"note": "a\u202eb"}, "control character"),
        ({"time_1": "2026-11-30T10:00"}, "already passed"),
        ({"time_1": "9999-12-31T23:59"}, "too far ahead"),
        ({"time_1": "tomorrow"}, "Enter a date and time"),
        ({"time_1": ""}, "Propose at least one time"),
        ({"time_1": "2027-03-28T02:30"}, "clocks skip"),  # Berlin springs forward
    ],
)
def test_bad_input_is_shown_beside_the_field_and_nothing_is_stored(
    client, frozen, remote, change, message
):
    response = client.post("/t/ada/request/", form_data(remote, **change))
    assert response.status_code == 200
    assert "Please check the form" in response.content.decode()
    assert message in response.content.decode()
    assert 'value="Sam Student"' in response.content.decode() or "student_name" in change
    assert not TimeRequest.objects.exists()


def test_a_time_inside_the_notice_says_so_in_the_students_zone(client, frozen, remote):
    response = client.post("/t/ada/request/", form_data(remote, time_1="2026-12-02T20:00"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "12 hours&#x27; notice" in body
    assert "Berlin time" in body


def test_the_tutor_sees_requests_with_a_count_and_accepts_in_one_click(
    client, frozen, now, make_request, tutor
):
    row = make_request(2, 3)
    client.force_login(tutor.user)
    page = client.get("/tutor/requests/").content.decode()
    assert "Sam Student" in page
    assert 'Requests <span class="badge">1' in page
    answered = client.post(f"/tutor/requests/{row.pk}/accept/", {"choice": "2"}, follow=True)
    assert "Offered to Sam Student" in answered.content.decode()
    row.refresh_from_db()
    assert (row.status, row.accepted_choice) == (TimeRequestStatus.ACCEPTED, 2)
    assert 'Requests <span class="badge">' not in client.get("/tutor/").content.decode()


def test_the_tutor_is_told_why_a_time_cannot_be_offered(
    client, frozen, now, make_request, tutor, settings
):
    row = make_request(2)
    tutor.min_notice_minutes = 30 * 24 * 60
    tutor.save()
    client.force_login(tutor.user)
    answered = client.post(f"/tutor/requests/{row.pk}/accept/", {"choice": "1"}, follow=True)
    assert "This slot starts too soon to be booked." in answered.content.decode()
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.PENDING


def test_the_tutor_declines_with_a_message(client, frozen, make_request, tutor):
    row = make_request(2)
    client.force_login(tutor.user)
    client.post(f"/tutor/requests/{row.pk}/decline/", {"message": "Away that week."})
    row.refresh_from_db()
    assert (row.status, row.decline_message) == (TimeRequestStatus.DECLINED, "Away that week.")


def test_the_offer_page_shows_the_time_in_the_students_zone_and_holds(
    frozen, now, make_request, tutor
):
    row = make_request(2)
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    client = Client()
    page = client.get(row.offer_path).content.decode()
    # 23:00 UTC on Friday December 4 is midnight in Berlin, Saturday December 5.
    assert "Saturday, December 5, 2026 at 12:00 AM" in page
    assert "Hold and pay" in page
    held = client.post(row.offer_path)
    assert held.status_code == 302
    assert held["Location"].startswith("http://testserver/payments/simulated/")
    assert Booking.objects.get().slot_id == row.slot_id


def test_an_ended_offer_says_so_and_holds_nothing(frozen, now, make_request, tutor):
    row = make_request(5)
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    frozen.shift(timedelta(hours=49))
    time_requests.time_requests_expire(now=now + timedelta(hours=49))
    client = Client()
    assert "This offer has ended" in client.get(row.offer_path).content.decode()
    refused = client.post(row.offer_path)
    assert refused.status_code == 409
    assert not Booking.objects.exists()


def test_a_forged_offer_link_is_a_404(client, frozen, make_request, tutor, now):
    row = make_request(2)
    time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    row.refresh_from_db()
    assert client.get(f"/offer/{row.offer_key}x{'A' * 43}/").status_code == 404
    # A manage-link signature over the same key is no offer link (purposes differ).
    from bookings import tokens

    assert client.get(f"/offer/{tokens.token_for('manage', row.offer_key)}/").status_code == 404
    assert client.get(f"/offer/{row.offer_token}/").status_code == 200
    assert times_from(now, 2)[0] == row.slot.start
