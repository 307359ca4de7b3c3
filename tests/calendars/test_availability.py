"""Busy times hide slots through the one availability decision: the slot list, the
hold, a reschedule and late money, exactly where the tutor is busy, across DST."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from bookings import services as booking_services
from bookings import sql
from bookings.availability import Busy, Closed, Open, decide
from bookings.errors import SlotUnavailable
from bookings.models import BusyInterval, Mode, Offering, Tutor
from bookings.selectors import open_slots
from calendars import services
from tests.conftest import hold

from . import feeds
from .conftest import MARCH, OCTOBER, FeedServer, add_source, confirm, evening_rule, slot_at, sync

NY = ZoneInfo("America/New_York")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.fixture
def now() -> datetime:
    return MARCH  # the views' clock too (the `frozen` fixture)


@pytest.fixture
def evenings(tutor: Tutor, offerings: tuple[Offering, Offering]) -> Tutor:
    evening_rule(tutor, offerings, MARCH)
    return tutor


def open_times(
    tutor: Tutor, start: datetime, days: int, now: datetime
) -> dict[datetime, list[str]]:
    """Each open slot's local start → its open modes."""
    rows = open_slots(tutor=tutor, start=start, end=start + timedelta(days=days), now=now)
    return {row.slot.start.astimezone(NY): sorted(row.offerings) for row in rows}


BOTH = ["in_person", "remote"]
REMOTE = ["remote"]


def test_the_slot_list_hides_exactly_the_busy_times_across_spring_forward(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    google = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    icloud = add_source(evenings, feeds_server.serve("/i.ics", feeds.icloud()), MARCH, name="Work")
    sync(google, MARCH)
    sync(icloud, MARCH)
    times = open_times(evenings, MARCH, 27, MARCH)
    assert times == {
        # Tue 3 Mar (EST): pottery 18–19 hides 18:00; 19:00 is right after it: the
        # travel buffer drops in person.
        local(2026, 3, 3, 19): REMOTE,
        local(2026, 3, 3, 20): BOTH,
        # Thu 5 Mar: the free reminder blocks nothing.
        local(2026, 3, 5, 18): BOTH,
        local(2026, 3, 5, 19): BOTH,
        local(2026, 3, 5, 20): BOTH,
        # Tue 10 Mar (EDT now): pottery still 18–19 on the wall clock.
        local(2026, 3, 10, 19): REMOTE,
        local(2026, 3, 10, 20): BOTH,
        # Thu 12 Mar: the cancelled dentist blocks nothing; Berlin's midnight call is
        # 19:00 here (5 hours apart this week).
        local(2026, 3, 12, 18): REMOTE,
        local(2026, 3, 12, 20): REMOTE,
        # Tue 17 Mar: pottery cancelled that week (EXDATE).
        local(2026, 3, 17, 18): BOTH,
        local(2026, 3, 17, 19): BOTH,
        local(2026, 3, 17, 20): BOTH,
        # Thu 19 Mar: all-day conference: nothing.
        # Tue 24 Mar: pottery moved to 20:00 (RECURRENCE-ID).
        local(2026, 3, 24, 18): BOTH,
        local(2026, 3, 24, 19): REMOTE,
        # Thu 26 Mar: floating 19:00 choir, on the tutor's wall clock.
        local(2026, 3, 26, 18): REMOTE,
        local(2026, 3, 26, 20): REMOTE,
    }


def test_the_slot_list_hides_the_busy_times_across_fall_back(
    tutor: Tutor, offerings: tuple[Offering, Offering], feeds_server: FeedServer
) -> None:
    evening_rule(tutor, offerings, OCTOBER)
    source = add_source(tutor, feeds_server.serve("/a.ics", feeds.autumn()), OCTOBER)
    sync(source, OCTOBER)
    times = open_times(tutor, local(2026, 10, 29), 8, OCTOBER)
    assert local(2026, 10, 29, 18) not in times  # EDT: 22:00 UTC
    assert local(2026, 11, 5, 18) not in times  # EST: 23:00 UTC
    assert times[local(2026, 10, 29, 19)] == REMOTE
    assert times[local(2026, 11, 5, 19)] == REMOTE
    assert times[local(2026, 11, 3, 18)] == BOTH


def test_without_a_travel_buffer_only_the_busy_slot_itself_closes(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    booking_services.tutor_save(tutor=evenings, now=MARCH, travel_buffer_minutes=0)
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    sync(source, MARCH)
    times = open_times(evenings, local(2026, 3, 3), 1, MARCH)
    assert times == {local(2026, 3, 3, 19): BOTH, local(2026, 3, 3, 20): BOTH}


@pytest.fixture
def pottery(evenings: Tutor, feeds_server: FeedServer) -> Tutor:
    source = add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), MARCH)
    sync(source, MARCH)
    return evenings


@pytest.mark.usefixtures("frozen")
def test_a_hold_on_a_busy_slot_is_refused_as_tutor_busy(pottery: Tutor, api: APIClient) -> None:
    response = hold(api, slot_at(pottery, local(2026, 3, 3, 18)))
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["reason"]) == (
        "slot_unavailable",
        "tutor_busy",
    )


@pytest.mark.usefixtures("frozen")
def test_next_to_a_busy_time_only_remote_can_be_held(pottery: Tutor, api: APIClient) -> None:
    slot = slot_at(pottery, local(2026, 3, 3, 19))
    refused = hold(api, slot, mode=Mode.IN_PERSON)
    assert refused.status_code == 409
    assert refused.json()["reason"] == "tutor_busy"
    assert "remote" in refused.json()["message"]
    assert hold(api, slot, mode=Mode.REMOTE).status_code == 201


def test_a_booking_cannot_be_moved_onto_a_busy_time(pottery: Tutor) -> None:
    booking = confirm(slot_at(pottery, local(2026, 3, 5, 18)), MARCH)
    with pytest.raises(SlotUnavailable) as refused:
        booking_services.booking_reschedule(
            booking_id=booking.pk, slot_id=slot_at(pottery, local(2026, 3, 10, 18)).pk, now=MARCH
        )
    assert refused.value.reason == "tutor_busy"
    moved = booking_services.booking_reschedule(
        booking_id=booking.pk, slot_id=slot_at(pottery, local(2026, 3, 10, 20)).pk, now=MARCH
    )
    assert moved.slot.start == local(2026, 3, 10, 20)


@pytest.mark.usefixtures("frozen")  # the hold's created_at: notice counts from it
def test_late_money_for_a_slot_that_became_busy_is_refused(
    evenings: Tutor, feeds_server: FeedServer
) -> None:
    slot = slot_at(evenings, local(2026, 3, 3, 18))
    held = booking_services.booking_hold(
        slot_id=slot.pk, mode="remote", student_name="Sam", student_email="s@example.com", now=MARCH
    ).booking
    later = MARCH + timedelta(hours=1)
    booking_services.bookings_expire_holds(now=later)
    sync(add_source(evenings, feeds_server.serve("/g.ics", feeds.google()), later), later)
    with pytest.raises(SlotUnavailable) as refused:
        booking_services.booking_confirm(booking_id=held.pk, now=later)
    assert refused.value.reason == "tutor_busy"


def test_the_holds_single_read_brings_the_busy_times_around_the_slot(pottery: Tutor) -> None:
    slot = slot_at(pottery, local(2026, 3, 3, 19))
    around = sql.busy_around(slot, margin=timedelta(minutes=30), now=MARCH)
    assert around.busy == [Busy.elsewhere(pottery.pk, local(2026, 3, 3, 18), local(2026, 3, 3, 19))]
    far = slot_at(pottery, local(2026, 3, 5, 20))
    assert sql.busy_around(far, margin=timedelta(minutes=30), now=MARCH).busy == []


def test_the_slot_list_reads_busy_times_in_the_same_query_as_bookings(
    pottery: Tutor, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):
        open_times(pottery, MARCH, 56, MARCH)


def test_busy_times_of_another_tutor_change_nothing(
    pottery: Tutor, make_tutor: Any, offerings: tuple[Offering, Offering]
) -> None:
    other = make_tutor()
    BusyInterval.objects.create(
        tutor=other, source=999, start=local(2026, 3, 5, 17), end=local(2026, 3, 5, 22)
    )
    assert open_times(pottery, local(2026, 3, 5), 1, MARCH)[local(2026, 3, 5, 18)] == BOTH


@pytest.mark.parametrize(
    ("busy", "mode", "expected"),
    [
        ((18, 0, 19, 0), None, "tutor_busy"),
        ((18, 30, 18, 45), None, "tutor_busy"),
        ((17, 0, 18, 0), None, ["remote"]),  # touching: the buffer drops in person
        ((16, 0, 17, 29), None, ["in_person", "remote"]),  # beyond the 30 min buffer
        ((19, 0, 20, 0), "in_person", "tutor_busy"),
        ((19, 0, 20, 0), "remote", ["remote"]),
    ],
)
def test_decide_closes_a_busy_slot_and_buffers_in_person(
    pottery: Tutor, busy: tuple[int, int, int, int], mode: str | None, expected: Any
) -> None:
    slot = slot_at(pottery, local(2026, 3, 5, 18))
    h1, m1, h2, m2 = busy
    elsewhere = Busy.elsewhere(pottery.pk, local(2026, 3, 5, h1, m1), local(2026, 3, 5, h2, m2))
    decision = decide(slot, now=MARCH, busy=[elsewhere], mode=mode)
    if isinstance(expected, str):
        assert isinstance(decision, Closed)
        assert decision.reason == expected
    else:
        assert isinstance(decision, Open)
        assert sorted(decision.offerings) == expected


def test_a_busy_time_never_closes_the_booking_it_sits_on(pottery: Tutor) -> None:
    # Booked before the busy time came: late money for its own (unexpired) hold still
    # confirms, as the hold is checked when it was made.
    slot = slot_at(pottery, local(2026, 3, 5, 18))
    held = booking_services.booking_hold(
        slot_id=slot.pk, mode="remote", student_name="Sam", student_email="s@example.com", now=MARCH
    ).booking
    BusyInterval.objects.create(tutor=pottery, source=1, start=slot.start, end=slot.end)
    confirmed = booking_services.booking_confirm(booking_id=held.pk, now=MARCH)
    assert confirmed.status == "confirmed"
    assert services.sources_due(now=MARCH) == []
