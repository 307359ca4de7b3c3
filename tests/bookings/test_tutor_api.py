"""/api/tutor/: a tutor manages their own offerings, availability and bookings."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bookings.models import (
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingStatus,
    Offering,
    Slot,
    SlotRemoval,
)
from tests.bookings.test_materialise import book
from tests.conftest import add_offerings, hold, make_series, make_slot

pytestmark = pytest.mark.django_db


# --- authentication and isolation -------------------------------------------------------------


def test_anonymous_requests_get_401(api, frozen):
    response = api.get("/api/tutor/bookings/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_a_user_without_a_tutor_profile_gets_403(frozen, django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("student"))
    response = client.get("/api/tutor/offerings/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_token_authentication_works(tutor, frozen):
    token = Token.objects.create(user=tutor.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/tutor/me/").json()["slug"] == "ada"


@pytest.fixture
def other_tutor(make_tutor, now):
    """Tutor B, with one of everything."""
    other = make_tutor(slug="bo", display_name="Bo")
    remote, _ = add_offerings(other)
    slot = make_slot(other, now + timedelta(days=2), remote=remote)
    booked = make_slot(other, now + timedelta(days=3), remote=remote)
    booking = book(booked)
    rule = AvailabilityRule.objects.create(
        tutor=other, weekdays=[1], start_time="09:00", end_time="10:00"
    )
    rule.offerings.set([remote])
    block = BlockedPeriod.objects.create(
        tutor=other, start=now + timedelta(days=9), end=now + timedelta(days=10)
    )
    return {"offering": remote, "slot": slot, "booking": booking, "rule": rule, "block": block}


ISOLATION = [
    ("get", "/api/tutor/offerings/{offering}/", None),
    ("patch", "/api/tutor/offerings/{offering}/", {"price_amount": 1}),
    ("delete", "/api/tutor/offerings/{offering}/", None),
    ("get", "/api/tutor/rules/{rule}/", None),
    ("patch", "/api/tutor/rules/{rule}/", {"start_time": "08:00"}),
    ("delete", "/api/tutor/rules/{rule}/", None),
    ("get", "/api/tutor/blocks/{block}/", None),
    ("delete", "/api/tutor/blocks/{block}/", None),
    ("get", "/api/tutor/slots/{slot}/", None),
    ("delete", "/api/tutor/slots/{slot}/", None),
    ("post", "/api/tutor/slots/{slot}/block/", None),
    ("get", "/api/tutor/bookings/{booking}/", None),
    ("post", "/api/tutor/bookings/{booking}/cancel/", None),
    ("post", "/api/tutor/bookings/{booking}/complete/", None),
    ("post", "/api/tutor/bookings/{booking}/no-show/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ISOLATION)
def test_tutor_a_cannot_read_or_change_tutor_bs_data(
    tutor_api, frozen, other_tutor, method, path, body
):
    ids = {name: obj.pk for name, obj in other_tutor.items()}
    response = getattr(tutor_api, method)(path.format(**ids), body, format="json")
    assert response.status_code == 404
    other_tutor["offering"].refresh_from_db()
    assert other_tutor["offering"].is_active and other_tutor["offering"].price_amount == 9000
    assert AvailabilityRule.objects.filter(pk=ids["rule"], start_time="09:00").exists()
    assert BlockedPeriod.objects.filter(pk=ids["block"]).exists()
    assert Slot.objects.get(pk=ids["slot"]).removed_at is None
    assert Booking.objects.get(pk=ids["booking"]).status == BookingStatus.CONFIRMED


@pytest.mark.parametrize(
    "path",
    [
        "/api/tutor/offerings/",
        "/api/tutor/rules/",
        "/api/tutor/blocks/",
        "/api/tutor/slots/",
        "/api/tutor/bookings/",
    ],
)
def test_lists_show_only_the_signed_in_tutors_rows(tutor_api, frozen, other_tutor, path):
    body = tutor_api.get(path).json()
    assert body["count"] == 0, body


def test_tutor_a_cannot_use_tutor_bs_offerings_in_a_rule(tutor_api, frozen, other_tutor):
    response = tutor_api.post(
        "/api/tutor/rules/",
        {
            "weekdays": [1],
            "start_time": "09:00",
            "end_time": "12:00",
            "offerings": [other_tutor["offering"].pk],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "offerings" in response.json()["fields"]


# --- profile and offerings --------------------------------------------------------------------


def test_the_tutor_edits_notice_buffer_and_refund_policy(tutor_api, frozen, tutor):
    response = tutor_api.patch(
        "/api/tutor/me/",
        {"min_notice_minutes": 60, "travel_buffer_minutes": 45, "full_refund_hours": 48},
        format="json",
    )
    assert response.status_code == 200
    tutor.refresh_from_db()
    assert (tutor.min_notice_minutes, tutor.travel_buffer_minutes, tutor.full_refund_hours) == (
        60,
        45,
        48,
    )


def test_a_bad_time_zone_in_the_profile_is_a_400(tutor_api, frozen):
    response = tutor_api.patch("/api/tutor/me/", {"timezone": "Nowhere/Land"}, format="json")
    assert response.status_code == 400
    assert "timezone" in response.json()["fields"]


def test_the_tutor_creates_offerings_with_their_currency(tutor_api, frozen):
    response = tutor_api.post(
        "/api/tutor/offerings/",
        {
            "mode": "in_person",
            "title": "Pairing in person",
            "duration_minutes": 90,
            "price_amount": 15000,
            "place_name": "Think Coffee",
            "place_address": "248 Mercer St, New York, NY 10012",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Offering.objects.get(title="Pairing in person").currency == "usd"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"mode": "remote", "title": "x", "duration_minutes": 60, "price_amount": 500},
            "video_url",
        ),
        (
            {"mode": "in_person", "title": "x", "duration_minutes": 60, "price_amount": 500},
            "place_name",
        ),
        (
            {
                "mode": "remote",
                "title": "x",
                "duration_minutes": 60,
                "price_amount": -5,
                "video_url": "https://v.example.com",
            },
            "price_amount",
        ),
        (
            {
                "mode": "remote",
                "title": "x",
                "duration_minutes": 5,
                "price_amount": 5,
                "video_url": "https://v.example.com",
            },
            "duration_minutes",
        ),
    ],
)
def test_an_incomplete_offering_is_a_400_naming_the_field(tutor_api, frozen, body, field):
    response = tutor_api.post("/api/tutor/offerings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_deleting_a_used_offering_deactivates_it(tutor_api, frozen, slot, remote):
    assert tutor_api.delete(f"/api/tutor/offerings/{remote.pk}/").status_code == 204
    remote.refresh_from_db()
    assert remote.is_active is False
    slots = APIClient().get("/api/slots/", {"tutor": "ada"}).json()["results"]
    assert slots[0]["modes"] == ["in_person"]


# --- availability -----------------------------------------------------------------------------


def test_adding_a_rule_creates_slots_students_can_see(tutor_api, frozen, remote, in_person):
    response = tutor_api.post(
        "/api/tutor/rules/",
        {
            "weekdays": [2, 4],
            "start_time": "18:00",
            "end_time": "21:00",
            "offerings": [remote.pk, in_person.pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["weekdays"] == [2, 4]
    slots = (
        APIClient()
        .get(
            "/api/slots/",
            {"tutor": "ada", "tz": "America/New_York", "start": "2026-12-03", "end": "2026-12-03"},
        )
        .json()["results"]
    )
    assert [s["start"] for s in slots] == [
        "2026-12-03T18:00:00-05:00",
        "2026-12-03T19:00:00-05:00",
        "2026-12-03T20:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": [0, 8]}, "weekdays"),
        ({"end_time": "17:00"}, "end_time"),
        ({"start_time": "25:00"}, "start_time"),
        ({"offerings": []}, "offerings"),
        ({"offerings": [999999]}, "offerings"),
        ({"valid_from": "2027-01-10", "valid_until": "2027-01-01"}, "valid_until"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(tutor_api, frozen, remote, change, field):
    body = {
        "weekdays": [1],
        "start_time": "18:00",
        "end_time": "20:00",
        "offerings": [remote.pk],
        **change,
    }
    response = tutor_api.post("/api/tutor/rules/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


def test_offerings_of_different_lengths_cannot_share_a_rule(tutor_api, frozen, tutor, remote):
    long = Offering.objects.create(
        tutor=tutor,
        mode="in_person",
        title="Long",
        duration_minutes=90,
        price_amount=5000,
        place_name="P",
        place_address="A",
    )
    response = tutor_api.post(
        "/api/tutor/rules/",
        {
            "weekdays": [1],
            "start_time": "18:00",
            "end_time": "21:00",
            "offerings": [remote.pk, long.pk],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "offerings" in response.json()["fields"]


def test_deleting_a_rule_withdraws_its_unbooked_slots(tutor_api, frozen, weekly_rule):
    assert tutor_api.delete(f"/api/tutor/rules/{weekly_rule.pk}/").status_code == 204
    assert not Slot.objects.filter(removed_at__isnull=True).exists()


def test_a_one_off_slot_is_created_and_overlaps_are_refused(tutor_api, frozen, remote, now):
    start = (now + timedelta(days=3)).isoformat()
    response = tutor_api.post(
        "/api/tutor/slots/", {"start": start, "offerings": [remote.pk]}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["offerings"] == [remote.pk]
    overlapping = (now + timedelta(days=3, minutes=30)).isoformat()
    response = tutor_api.post(
        "/api/tutor/slots/", {"start": overlapping, "offerings": [remote.pk]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "slot_overlap"


@pytest.mark.parametrize("start", ["2026-12-09T10:00:00", "2026-11-01T10:00:00Z", "soon", None])
def test_a_one_off_slot_needs_an_aware_future_start(tutor_api, frozen, remote, start):
    response = tutor_api.post(
        "/api/tutor/slots/", {"start": start, "offerings": [remote.pk]}, format="json"
    )
    assert response.status_code == 400
    assert "start" in response.json()["fields"]


def test_deleting_a_booked_slot_is_refused(tutor_api, frozen, slot):
    book(slot)
    response = tutor_api.delete(f"/api/tutor/slots/{slot.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_booked"
    slot.refresh_from_db()
    assert slot.removed_at is None


def test_deleting_an_unbooked_slot_withdraws_it_for_good(tutor_api, frozen, slot):
    assert tutor_api.delete(f"/api/tutor/slots/{slot.pk}/").status_code == 204
    slot.refresh_from_db()
    assert slot.removed_reason == SlotRemoval.DELETED


def test_blocking_a_slot_records_a_blocked_period(tutor_api, frozen, slot):
    response = tutor_api.post(f"/api/tutor/slots/{slot.pk}/block/")
    assert response.status_code == 201
    block = BlockedPeriod.objects.get()
    assert (block.start, block.end) == (slot.start, slot.end)
    slot.refresh_from_db()
    assert slot.removed_reason == SlotRemoval.BLOCKED


def test_a_blocked_period_needs_aware_ordered_times(tutor_api, frozen, now):
    response = tutor_api.post(
        "/api/tutor/blocks/",
        {
            "start": (now + timedelta(days=2)).isoformat(),
            "end": (now + timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert "end" in response.json()["fields"]
    response = tutor_api.post(
        "/api/tutor/blocks/",
        {"start": "2026-12-10T00:00:00", "end": "2026-12-11T00:00:00"},
        format="json",
    )
    assert response.status_code == 400


# --- bookings ---------------------------------------------------------------------------------


def test_bookings_list_filters_by_status_mode_and_time(tutor_api, frozen, tutor, remote, now):
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (1, 2, 3)]
    book(slots[0])
    book(slots[1], BookingStatus.CANCELLED)
    book(slots[2])
    body = tutor_api.get("/api/tutor/bookings/", {"status": "confirmed"}).json()
    assert [b["slot"] for b in body["results"]] == [slots[0].pk, slots[2].pk]
    body = tutor_api.get(
        "/api/tutor/bookings/", {"start_from": (now + timedelta(days=1, hours=1)).isoformat()}
    ).json()
    assert [b["slot"] for b in body["results"]] == [slots[1].pk, slots[2].pk]
    assert tutor_api.get("/api/tutor/bookings/", {"mode": "in_person"}).json()["count"] == 0
    assert tutor_api.get("/api/tutor/bookings/", {"status": "bogus"}).status_code == 400


def test_bookings_list_names_each_sessions_series_and_week(tutor_api, frozen, tutor, remote, now):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=3, skip=(2,))
    book(make_slot(tutor, now + timedelta(days=2), remote=remote))

    body = tutor_api.get("/api/tutor/bookings/").json()

    assert [b["series"] for b in body["results"]] == [
        {"id": str(series.pk), "week": 1, "weeks": 3},
        None,
        {"id": str(series.pk), "week": 3, "weeks": 3},
    ]
    one = tutor_api.get(f"/api/tutor/bookings/{body['results'][2]['id']}/").json()
    assert one["series"] == {"id": str(series.pk), "week": 3, "weeks": 3}


def test_bookings_list_reads_series_in_a_constant_number_of_queries(
    tutor_api, frozen, tutor, remote, now
):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert tutor_api.get("/api/tutor/bookings/").status_code == 200
        return len(queries)

    make_series(tutor, remote, now + timedelta(days=1, hours=1), weeks=2)
    few = list_queries()
    make_series(tutor, remote, now + timedelta(days=1, hours=3), weeks=6, email="b@example.com")
    make_series(tutor, remote, now + timedelta(days=1, hours=5), weeks=6, email="c@example.com")
    book(make_slot(tutor, now + timedelta(hours=20), remote=remote))

    assert list_queries() == few


def test_a_tutor_cancellation_refunds_in_full_even_at_the_last_minute(
    api, tutor_api, frozen, slot, now
):
    hold(api, slot)
    from payments import services as payment_services
    from payments.models import Payment

    payment_services.simulated_pay(payment=Payment.objects.get(), now=now)
    frozen.shift(timedelta(hours=47))  # one hour before the session
    booking = Booking.objects.get()
    response = tutor_api.post(f"/api/tutor/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 9000, "currency": "usd"}


def test_outcomes_are_recorded_only_once_the_session_started(tutor_api, frozen, slot):
    booking = book(slot)
    response = tutor_api.post(f"/api/tutor/bookings/{booking.pk}/complete/")
    assert response.status_code == 409
    assert response.json()["code"] == "session_not_started"
    frozen.shift(timedelta(days=2, minutes=61))
    assert tutor_api.post(f"/api/tutor/bookings/{booking.pk}/no-show/").json()["status"] == (
        "no_show"
    )
    response = tutor_api.post(f"/api/tutor/bookings/{booking.pk}/complete/")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_a_price_below_stripes_minimum_charge_is_refused(tutor_api, frozen):
    response = tutor_api.post(
        "/api/tutor/offerings/",
        {
            "mode": "remote",
            "title": "Free chat",
            "duration_minutes": 30,
            "price_amount": 0,
            "video_url": "https://v.example.com",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "price_amount" in response.json()["fields"]
