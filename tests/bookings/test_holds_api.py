"""POST /api/bookings/: hold a slot while the student pays; the sweeper expires holds."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings import services
from bookings.models import Booking, BookingEvent, BookingStatus
from tests.conftest import hold, make_slot

pytestmark = pytest.mark.django_db


def test_a_hold_answers_201_with_the_booking_and_where_to_pay(api, frozen, slot, now):
    response = hold(api, slot, student_timezone="Europe/Berlin", email="Sam@Example.com")
    assert response.status_code == 201
    body = response.json()
    booking = Booking.objects.get()
    assert body["id"] == str(booking.pk)
    assert body["status"] == "pending_payment"
    assert body["slot"] == slot.pk
    assert body["mode"] == "remote"
    assert body["start"] == "2026-12-04T15:00:00Z"
    assert body["end"] == "2026-12-04T16:00:00Z"
    assert body["hold_expires_at"] == "2026-12-02T15:30:00Z"
    assert body["payment_url"].startswith("http://testserver/payments/simulated/")
    assert body["manage_url"] == f"http://testserver/bookings/{booking.manage_token}/"
    assert body["price"] == {"amount": 9000, "currency": "usd"}
    assert body["video_url"] is None  # only once paid
    assert booking.student_email == "sam@example.com"
    assert booking.student_timezone == "Europe/Berlin"
    assert booking.hold_expires_at == now + timedelta(minutes=30)
    assert [(e.from_status, e.to_status, e.actor) for e in BookingEvent.objects.all()] == [
        ("", "pending_payment", "student")
    ]


def test_the_price_is_a_snapshot_later_price_changes_do_not_touch_it(api, frozen, slot, in_person):
    hold(api, slot, mode="in_person")
    in_person.price_amount = 99999
    in_person.save()
    assert Booking.objects.get().price_amount == 12000


def test_a_second_hold_on_the_same_slot_gets_409_slot_unavailable(api, frozen, slot):
    assert hold(api, slot).status_code == 201
    response = hold(api, slot, email="kim@example.com", mode="in_person")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"
    assert Booking.objects.count() == 1


def test_one_email_can_hold_at_most_two_slots_at_once(api, frozen, tutor, remote, now):
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (1, 2, 3)]
    assert hold(api, slots[0]).status_code == 201
    assert hold(api, slots[1], email="SAM@example.com").status_code == 201
    response = hold(api, slots[2])
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_holds"
    frozen.shift(timedelta(minutes=31))  # the first holds expire
    assert hold(api, slots[2]).status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"student_email": "not-an-email"}, "student_email"),
        ({"student_name": ""}, "student_name"),
        ({"student_name": "x" * 121}, "student_name"),
        ({"mode": "carrier_pigeon"}, "mode"),
        ({"slot": "abc"}, "slot"),
        ({"slot": 999999}, "slot"),
        ({"slot": -1}, "slot"),
        ({"slot": 10**30}, "slot"),
        ({"notes": "x" * 2001}, "notes"),
        ({"student_timezone": "Atlantis/Capital"}, "student_timezone"),
    ],
)
def test_bad_input_gets_400_naming_the_field_and_holds_nothing(api, frozen, slot, change, field):
    body = {
        "slot": slot.pk,
        "mode": "remote",
        "student_name": "Sam",
        "student_email": "sam@example.com",
        **change,
    }
    response = api.post("/api/bookings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Booking.objects.exists()


def test_a_mode_the_slot_does_not_offer_is_a_400(api, frozen, tutor, remote, now):
    only_remote = make_slot(tutor, now + timedelta(days=2), remote=remote)
    response = hold(api, only_remote, mode="in_person")
    assert response.status_code == 400
    assert response.json()["code"] == "mode_not_offered"
    assert "mode" in response.json()["fields"]


def test_malformed_json_is_a_400_not_a_500(api, frozen, slot):
    response = api.generic(
        "POST", "/api/bookings/", b'{"slot": 1,', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_a_missing_body_names_every_required_field(api, frozen):
    response = api.post("/api/bookings/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"slot", "mode", "student_name", "student_email"}


def test_a_slot_in_the_past_or_inside_the_notice_cannot_be_held(api, frozen, tutor, remote, now):
    past = make_slot(tutor, now - timedelta(hours=3), remote=remote)
    soon = make_slot(tutor, now + timedelta(hours=2), remote=remote)
    for slot in (past, soon):
        response = hold(api, slot)
        assert response.status_code == 409
        assert response.json()["code"] == "slot_unavailable"


def test_a_withdrawn_slot_cannot_be_held(api, frozen, slot, now):
    services.slot_delete(slot=slot, now=now)
    assert hold(api, slot).status_code == 409


def test_the_travel_buffer_applies_to_holds_too(api, frozen, tutor, remote, in_person, now):
    first = make_slot(tutor, now + timedelta(days=2), in_person=in_person)
    next_ = make_slot(tutor, now + timedelta(days=2, hours=1), remote=remote, in_person=in_person)
    assert hold(api, first, mode="in_person").status_code == 201
    response = hold(api, next_, email="kim@example.com")
    assert response.status_code == 409


def test_a_long_in_person_session_that_began_hours_earlier_still_blocks_the_next_slot(
    api, frozen, tutor, remote, in_person, now
):
    day = now + timedelta(days=2)
    # A withdrawn slot in the middle of the long one: withdrawn rows may overlap.
    services.slot_delete(slot=make_slot(tutor, day + timedelta(hours=1), remote=remote), now=now)
    long = make_slot(tutor, day, in_person=in_person, minutes=240)
    right_after = make_slot(tutor, day + timedelta(hours=4), remote=remote, in_person=in_person)
    later = make_slot(tutor, day + timedelta(hours=5), remote=remote, in_person=in_person)
    assert hold(api, long, mode="in_person").status_code == 201

    response = hold(api, right_after, email="kim@example.com")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"
    # Past the 30-minute travel buffer the tutor is free again, in person too.
    assert hold(api, later, mode="in_person", email="kim@example.com").status_code == 201
    assert Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT).count() == 2


def test_the_sweeper_expires_holds_past_their_time_and_frees_the_slot(api, frozen, slot, now):
    hold(api, slot)
    assert services.bookings_expire_holds(now=now + timedelta(minutes=29)) == 0
    assert services.bookings_expire_holds(now=now + timedelta(minutes=30)) == 1
    booking = Booking.objects.get()
    assert booking.status == BookingStatus.EXPIRED
    assert [e.reason for e in booking.events.all()] == ["held", "hold_expired"]
    assert hold(api, slot, email="kim@example.com").status_code == 201


def test_running_the_sweeper_twice_changes_nothing_more(api, frozen, slot, now):
    hold(api, slot)
    later = now + timedelta(hours=1)
    assert services.bookings_expire_holds(now=later) == 1
    assert services.bookings_expire_holds(now=later) == 0
    assert BookingEvent.objects.filter(to_status=BookingStatus.EXPIRED).count() == 1


def test_the_hold_runs_a_constant_number_of_queries(api, frozen, tutor, remote, now):
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in range(1, 30)]
    counts = []
    for i, s in enumerate((slots[0], slots[-1])):
        with CaptureQueriesContext(connection) as ctx:
            assert hold(api, s, email=f"s{i}@example.com").status_code == 201
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
