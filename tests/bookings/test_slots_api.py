"""GET /api/slots/: open slots in a bounded range, rendered in the visitor's zone."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings.models import BookingStatus
from tests.bookings.test_materialise import book
from tests.conftest import make_slot

pytestmark = pytest.mark.django_db


def get_slots(api, **params):
    return api.get("/api/slots/", {"tutor": "ada", **params})


def test_it_lists_open_slots_with_modes_prices_and_place(api, frozen, slot):
    response = get_slots(api)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (item,) = body["results"]
    assert item == {
        "id": slot.pk,
        "tutor": "ada",
        "start": "2026-12-04T15:00:00+00:00",
        "end": "2026-12-04T16:00:00+00:00",
        "duration_minutes": 60,
        "modes": ["remote", "in_person"],
        "prices": {
            "remote": {"amount": 9000, "currency": "usd"},
            "in_person": {"amount": 12000, "currency": "usd"},
        },
        "place": {"name": "Bryant Park Cafe", "address": "40 W 40th St, New York, NY 10018"},
    }


def test_it_renders_times_with_the_offset_of_the_requested_zone(api, frozen, slot):
    tokyo = get_slots(api, tz="Asia/Tokyo").json()["results"][0]
    assert tokyo["start"] == "2026-12-05T00:00:00+09:00"
    ny = get_slots(api, tz="America/New_York").json()["results"][0]
    assert ny["start"] == "2026-12-04T10:00:00-05:00"
    assert datetime.fromisoformat(tokyo["start"]) == datetime.fromisoformat(ny["start"])


def test_dates_are_read_as_days_in_the_requested_zone(api, frozen, tutor, remote):
    # 23:30 on Dec 9 in New York is already Dec 10 in UTC.
    late = make_slot(tutor, datetime(2026, 12, 10, 4, 30, tzinfo=UTC), remote=remote)
    in_ny = get_slots(api, tz="America/New_York", start="2026-12-09", end="2026-12-09").json()
    assert [s["id"] for s in in_ny["results"]] == [late.pk]
    in_utc = get_slots(api, start="2026-12-09", end="2026-12-09").json()
    assert in_utc["results"] == []


def test_it_filters_by_mode(api, frozen, tutor, remote, in_person, now):
    only_remote = make_slot(tutor, now + timedelta(days=3), remote=remote)
    both = make_slot(tutor, now + timedelta(days=4), remote=remote, in_person=in_person)
    ids = [s["id"] for s in get_slots(api, mode="in_person").json()["results"]]
    assert ids == [both.pk]
    ids = [s["id"] for s in get_slots(api, mode="remote").json()["results"]]
    assert ids == [only_remote.pk, both.pk]


def test_it_hides_slots_inside_the_minimum_notice(api, frozen, tutor, remote, now):
    make_slot(tutor, now + timedelta(hours=11), remote=remote)
    later = make_slot(tutor, now + timedelta(hours=13), remote=remote)
    assert [s["id"] for s in get_slots(api).json()["results"]] == [later.pk]


def test_it_hides_booked_and_held_slots(api, frozen, tutor, remote, now):
    held = make_slot(tutor, now + timedelta(days=1), remote=remote)
    confirmed = make_slot(tutor, now + timedelta(days=2), remote=remote)
    cancelled = make_slot(tutor, now + timedelta(days=3), remote=remote)
    book(held, BookingStatus.PENDING_PAYMENT)
    book(confirmed)
    book(cancelled, BookingStatus.CANCELLED)
    assert [s["id"] for s in get_slots(api).json()["results"]] == [cancelled.pk]


def test_a_booked_in_person_session_hides_slots_within_the_travel_buffer(
    api, frozen, tutor, remote, in_person, now
):
    base = now + timedelta(days=2)
    far_before = make_slot(
        tutor, base - timedelta(minutes=140), remote=remote
    )  # ends 80 min before
    make_slot(tutor, base - timedelta(minutes=70), remote=remote)  # ends 10 min before
    booked = make_slot(tutor, base, in_person=in_person)
    make_slot(tutor, base + timedelta(minutes=80), remote=remote, minutes=30)  # 20 min after
    after = make_slot(tutor, base + timedelta(minutes=120), remote=remote)  # 60 min after
    book(booked)
    ids = [s["id"] for s in get_slots(api).json()["results"]]
    assert ids == [far_before.pk, after.pk]


def test_a_slot_starting_exactly_one_buffer_after_is_open(
    api, frozen, tutor, remote, in_person, now
):
    base = now + timedelta(days=2)
    book(make_slot(tutor, base, in_person=in_person))
    edge = make_slot(tutor, base + timedelta(minutes=90), remote=remote)  # 30 min after the end
    assert [s["id"] for s in get_slots(api).json()["results"]] == [edge.pk]


def test_a_booked_remote_session_nearby_drops_only_the_in_person_mode(
    api, frozen, tutor, remote, in_person, now
):
    base = now + timedelta(days=2)
    booked = make_slot(tutor, base, remote=remote)
    next_slot = make_slot(tutor, base + timedelta(hours=1), remote=remote, in_person=in_person)
    book(booked)
    (item,) = get_slots(api).json()["results"]
    assert item["id"] == next_slot.pk
    assert item["modes"] == ["remote"]
    assert item["place"] is None


def test_inactive_offerings_are_not_offered(api, frozen, slot, in_person):
    in_person.is_active = False
    in_person.save()
    (item,) = get_slots(api).json()["results"]
    assert item["modes"] == ["remote"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-12-03T10:00:00"}, "start"),  # naive
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"start": "2026-12-10", "end": "2026-12-01"}, "end"),  # reversed
        ({"start": "2026-12-01", "end": "2027-02-15"}, "end"),  # over 62 days
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"mode": "telepathy"}, "mode"),
        ({"tutor": "not a slug!"}, "tutor"),
    ],
)
def test_bad_input_gets_a_clear_400_naming_the_field(api, frozen, slot, params, field):
    response = get_slots(api, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"]
    assert body["message"]


def test_an_unknown_tutor_is_a_404(api, frozen):
    response = api.get("/api/slots/", {"tutor": "nobody"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_query_count_does_not_grow_with_the_number_of_slots(
    api, frozen, tutor, remote, in_person, now
):
    def count_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            body = get_slots(api, end=(now + timedelta(days=60)).date().isoformat()).json()
        return len(ctx.captured_queries), body["count"]

    for day in range(1, 4):
        book(make_slot(tutor, now + timedelta(days=day), in_person=in_person))
        make_slot(tutor, now + timedelta(days=day, hours=3), remote=remote, in_person=in_person)
    few_queries, few = count_queries()
    for day in range(4, 60):
        for hour in range(0, 6, 2):
            slot = make_slot(
                tutor, now + timedelta(days=day, hours=hour), remote=remote, in_person=in_person
            )
            if hour == 0:
                book(slot)
    many_queries, many = count_queries()
    assert many > few * 10
    assert many_queries == few_queries <= 4
