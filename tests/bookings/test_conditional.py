"""Conditional GET of a tutor's open slots (bookings/conditional.py): the version the
database raises on every change (migration 0009), and the 304s it allows on
GET /api/slots/ and the tutor's page."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from bookings import services
from bookings.models import BlockedPeriod, Booking, BookingStatus, Offering, Slot, Tutor
from tests.bookings.test_materialise import book
from tests.conftest import add_offerings, hold, make_slot

pytestmark = pytest.mark.django_db

START, END = "2026-12-03", "2026-12-20"  # a fixed window around the slot fixture


def version(tutor: Tutor) -> int:
    return Tutor.objects.values_list("availability_version", flat=True).get(pk=tutor.pk)


def get_slots(api: Any, etag: str = "", **params: str) -> Any:
    query = {"tutor": "ada", "start": START, "end": END, **params}
    return api.get("/api/slots/", query, **({"HTTP_IF_NONE_MATCH": etag} if etag else {}))


def ids(response: Any) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def slot_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "bookings_slot" in q["sql"]]


# --- the version ------------------------------------------------------------------------------


def _slot_insert(tutor: Tutor, now: datetime, **_: Any) -> None:
    make_slot(tutor, now + timedelta(days=5), remote=Offering.objects.filter(tutor=tutor)[0])


def _slot_update(slot: Slot, now: datetime, **_: Any) -> None:
    Slot.objects.filter(pk=slot.pk).update(removed_at=now, removed_reason="deleted")


def _slot_delete(tutor: Tutor, now: datetime, **_: Any) -> None:
    remote = Offering.objects.filter(tutor=tutor)[0]
    extra = make_slot(tutor, now + timedelta(days=6), remote=remote)
    before = version(tutor)
    extra.delete()
    assert version(tutor) > before


def _booking_insert(slot: Slot, **_: Any) -> None:
    book(slot)


def _booking_status(slot: Slot, **_: Any) -> None:
    Booking.objects.filter(slot=slot).update(status=BookingStatus.CANCELLED)


def _booking_slot(slot: Slot, tutor: Tutor, now: datetime, **_: Any) -> None:
    other = make_slot(tutor, now + timedelta(days=7), remote=slot.remote_offering)
    Booking.objects.filter(slot=slot).update(slot=other)


def _block(tutor: Tutor, now: datetime, **_: Any) -> None:
    BlockedPeriod.objects.create(tutor=tutor, start=now, end=now + timedelta(days=1))


def _block_delete(tutor: Tutor, now: datetime, **_: Any) -> None:
    block = BlockedPeriod.objects.create(tutor=tutor, start=now, end=now + timedelta(days=1))
    before = version(tutor)
    BlockedPeriod.objects.filter(pk=block.pk).delete()
    assert version(tutor) > before


def _offering_price(slot: Slot, **_: Any) -> None:
    Offering.objects.filter(tutor=slot.tutor, mode="remote").update(price_amount=9500)


def _offering_insert(tutor: Tutor, **_: Any) -> None:
    add_offerings(tutor, minutes=30)


def _tutor_setting(field: str, value: Any) -> Callable[..., None]:
    def change(tutor: Tutor, now: datetime, **_: Any) -> None:
        services.tutor_save(tutor=Tutor.objects.get(pk=tutor.pk), now=now, **{field: value})

    return change


CHANGES = {
    "a slot is added": _slot_insert,
    "a slot is withdrawn": _slot_update,
    "a slot row is deleted": _slot_delete,
    "a booking is made": _booking_insert,
    "a booking changes status": _booking_status,
    "a booking moves to another slot": _booking_slot,
    "a period is blocked": _block,
    "a blocked period is lifted": _block_delete,
    "an offering's price changes": _offering_price,
    "an offering is added": _offering_insert,
    "the minimum notice changes": _tutor_setting("min_notice_minutes", 60),
    "the travel buffer changes": _tutor_setting("travel_buffer_minutes", 45),
    "the time zone changes": _tutor_setting("timezone", "Europe/Berlin"),
    "the profile changes": _tutor_setting("headline", "Python, gently"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_to_what_can_be_booked_raises_the_version(change, tutor, slot, now):
    if change in (_booking_status, _booking_slot):
        book(slot)
    before = version(tutor)
    change(tutor=tutor, slot=slot, now=now)
    assert version(tutor) > before


def test_a_booking_change_nobody_can_see_leaves_the_version(tutor, slot):
    booking = book(slot)
    before = version(tutor)
    Booking.objects.filter(pk=booking.pk).update(refund_amount=100, sequence=3)
    assert version(tutor) == before


def test_another_tutors_changes_leave_the_version(tutor, slot, make_tutor, now):
    other = make_tutor(slug="bo")
    remote, _ = add_offerings(other)
    before = version(tutor)
    make_slot(other, now + timedelta(days=3), remote=remote)
    assert version(tutor) == before


def test_a_save_of_an_older_instance_never_lowers_the_version(tutor, slot, now):
    stale = Tutor.objects.get(pk=tutor.pk)
    _slot_insert(tutor, now)
    current = version(tutor)
    assert stale.availability_version < current
    stale.save()  # writes every column back, the old version with them
    assert version(tutor) == current
    stale.min_notice_minutes = 30
    stale.save()
    assert version(tutor) == current + 1


def test_the_sweeper_expiring_a_hold_raises_the_version(api, frozen, tutor, slot, now):
    assert hold(api, slot).status_code == 201
    before = version(tutor)
    frozen.shift(timedelta(minutes=31))
    assert services.bookings_expire_holds(now=now + timedelta(minutes=31)) == 1
    assert version(tutor) > before


def test_the_hourly_materialiser_raises_the_version_when_it_adds_slots(tutor, weekly_rule, now):
    before = version(tutor)
    assert services.tutors_materialise(now=now + timedelta(weeks=1)) > 0
    assert version(tutor) > before


def test_every_version_trigger_survives_the_later_migrations(db):
    """Rebuilding a table on SQLite (many ALTERs do) silently drops its triggers."""
    tables = ["bookings_slot", "bookings_blockedperiod", "bookings_offering", "bookings_booking"]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            expected = {
                f"{t}_version_{op}" for t in tables for op in ("insert", "update", "delete")
            }
            expected.add("availability_version_guard")
        else:
            cursor.execute(
                "SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
                "WHERE NOT tgisinternal"
            )
            expected = {
                f"{t}.availability_version_{op}"
                for t in tables
                for op in ("insert", "update", "delete")
            }
            expected.add("bookings_tutor.availability_version_guard")
        found = {row[0] for row in cursor.fetchall()}
    assert expected <= found, f"missing: {sorted(expected - found)}"


def test_a_busy_time_from_the_tutors_calendar_raises_the_version(tutor, slot, now):
    from bookings.models import BusyInterval

    before = version(tutor)
    BusyInterval.objects.create(tutor=tutor, source=1, start=slot.start, end=slot.end)
    assert version(tutor) > before


# --- GET /api/slots/ ------------------------------------------------------------------------


def test_a_repeated_request_answers_304_without_the_slot_query(api, frozen, slot):
    first = get_slots(api)
    assert first.status_code == 200 and ids(first) == [slot.pk]
    with CaptureQueriesContext(connection) as captured:
        again = get_slots(api, first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert slot_queries(captured) == []
    assert len(captured) == 1  # the tutor's row, with its version


def test_a_304_carries_the_etag_and_public_revalidation(api, frozen, slot):
    first = get_slots(api)
    assert first["ETag"].startswith('W/"')
    assert first["Cache-Control"] == "public, no-cache"
    again = get_slots(api, first["ETag"])
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "public, no-cache"
    assert "Accept" in again["Vary"]


def test_any_of_several_tags_may_match(api, frozen, slot):
    etag = get_slots(api)["ETag"]
    assert get_slots(api, f'W/"1.2.3", {etag}').status_code == 304


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda api, slot, **_: hold(api, slot), id="a hold"),
        pytest.param(lambda slot, **_: book(slot), id="a booking"),
        pytest.param(
            lambda slot, tutor, now, **_: services.block_create(
                tutor=tutor, start=slot.start, end=slot.end, now=now
            ),
            id="a block",
        ),
        pytest.param(
            lambda tutor, now, **_: services.tutor_save(tutor=tutor, now=now, min_notice_minutes=0),
            id="the notice",
        ),
    ],
)
def test_a_change_answers_200_with_the_new_list(api, frozen, tutor, slot, now, change):
    first = get_slots(api)
    change(api=api, slot=slot, tutor=tutor, now=now)
    again = get_slots(api, first["ETag"])
    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]
    assert get_slots(api, again["ETag"]).status_code == 304


def test_a_new_weekly_rule_answers_200_with_its_slots(api, frozen, tutor, slot, remote, now):
    first = get_slots(api)
    services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[1, 2, 3, 4, 5],
        start_time=time(9, 0),
        end_time=time(10, 0),
        offerings=[remote],
    )
    again = get_slots(api, first["ETag"])
    assert again.status_code == 200
    assert len(ids(again)) > 1


def test_the_tag_ends_when_the_first_slot_passes_the_notice(api, frozen, slot, now):
    # The slot starts in 48 h; with 12 h notice it closes 36 h from now.
    etag = get_slots(api)["ETag"]
    frozen.shift(timedelta(hours=36) - timedelta(seconds=1))
    assert get_slots(api, etag).status_code == 304
    frozen.shift(timedelta(seconds=2))
    late = get_slots(api, etag)
    assert late.status_code == 200
    assert ids(late) == []


def test_the_tag_of_an_empty_fixed_window_lasts_until_data_changes(api, frozen, tutor, now):
    etag = get_slots(api)["ETag"]
    assert ".-." in etag
    frozen.shift(timedelta(days=30))
    assert get_slots(api, etag, start="2027-02-01", end="2027-02-02").status_code == 200
    etag = get_slots(api, start="2027-02-01", end="2027-02-02")["ETag"]
    assert get_slots(api, etag, start="2027-02-01", end="2027-02-02").status_code == 304


def test_in_a_window_that_moves_with_the_clock_the_tag_ends_when_a_slot_enters(
    api, frozen, tutor, remote, now
):
    soon = make_slot(tutor, now + timedelta(days=1), remote=remote)
    later = make_slot(tutor, now + timedelta(days=7, hours=3), remote=remote)

    def week(etag: str = "") -> Any:  # no start, no end: [now, now + 7 days)
        headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
        return api.get("/api/slots/", {"tutor": "ada"}, **headers)

    first = week()
    assert ids(first) == [soon.pk]
    frozen.shift(timedelta(hours=3) - timedelta(seconds=1))
    assert week(first["ETag"]).status_code == 304
    frozen.shift(timedelta(seconds=2))
    moved = week(first["ETag"])
    assert moved.status_code == 200
    assert ids(moved) == [soon.pk, later.pk]


def test_other_queries_have_other_tags_and_never_match_each_other(api, frozen, slot):
    tags = {
        get_slots(api)["ETag"],
        get_slots(api, tz="Asia/Tokyo")["ETag"],
        get_slots(api, mode="remote")["ETag"],
        get_slots(api, end="2026-12-21")["ETag"],
    }
    assert len(tags) == 4
    tokyo = get_slots(api, tz="Asia/Tokyo")["ETag"]
    assert get_slots(api, tokyo).status_code == 200
    assert get_slots(api, tokyo, tz="Asia/Tokyo").status_code == 304


def test_a_tag_edited_by_the_client_does_not_match(api, frozen, slot):
    etag = get_slots(api)["ETag"]
    version_, until, digest = etag.removeprefix('W/"').rstrip('"').split(".")
    stretched = f'W/"{version_}.{int(until) + 86400}.{digest}"'
    assert get_slots(api, stretched).status_code == 200
    frozen.shift(timedelta(days=2))
    assert get_slots(api, etag).status_code == 200


def test_head_answers_304_and_200_like_get(api, frozen, slot):
    etag = get_slots(api)["ETag"]
    query = {"tutor": "ada", "start": START, "end": END}
    assert api.head("/api/slots/", query, HTTP_IF_NONE_MATCH=etag).status_code == 304
    fresh = api.head("/api/slots/", query)
    assert fresh.status_code == 200 and fresh["ETag"] == etag


def test_the_browsable_api_and_the_all_tutors_list_are_not_tagged(api, frozen, slot):
    html = api.get("/api/slots/", {"tutor": "ada"}, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and not html.has_header("ETag")
    everyone = api.get("/api/slots/")
    assert everyone.status_code == 200 and not everyone.has_header("ETag")


# --- the tutor's page ---------------------------------------------------------------------------


def test_the_page_answers_304_to_a_repeated_visit_without_the_slot_query(client, frozen, slot):
    first = client.get("/t/ada/")
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-cache"
    with CaptureQueriesContext(connection) as captured:
        again = client.get("/t/ada/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "private, no-cache"
    assert "Cookie" in again["Vary"]
    assert slot_queries(captured) == []


def test_the_page_answers_200_after_a_hold(client, api, frozen, slot):
    first = client.get("/t/ada/")
    hold(api, slot)
    again = client.get("/t/ada/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert f'"id": {slot.pk}' not in again.content.decode()


def test_the_page_in_another_zone_or_as_a_list_has_another_tag(client, frozen, slot):
    tags = {
        client.get("/t/ada/")["ETag"],
        client.get("/t/ada/", {"tz": "Asia/Tokyo"})["ETag"],
        client.get("/t/ada/", {"view": "list"})["ETag"],
        client.get("/t/ada/", {"mode": "remote"})["ETag"],
    }
    assert len(tags) == 4


def test_the_plain_list_is_revalidated_at_the_visitors_midnight(client, frozen, slot, now):
    etag = client.get("/t/ada/", {"view": "list", "tz": "Asia/Tokyo"})["ETag"]
    # 15:00 UTC is 00:00 in Tokyo: the next local midnight is 24 h away.
    until = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert etag.split(".")[1] == str(int(until.timestamp()))


def test_a_signed_in_tutor_always_gets_a_fresh_page(client, frozen, tutor, slot):
    etag = client.get("/t/ada/")["ETag"]
    client.force_login(tutor.user)
    page = client.get("/t/ada/", HTTP_IF_NONE_MATCH=etag)
    assert page.status_code == 200
    assert not page.has_header("ETag")
    assert "csrfmiddlewaretoken" in page.content.decode()


def test_a_visitor_with_a_message_waiting_gets_a_fresh_page(client, frozen, slot):
    etag = client.get("/t/ada/")["ETag"]
    storage = CookieStorage(RequestFactory().get("/"))
    storage.add(messages.INFO, "Your booking was cancelled.")
    carrier = HttpResponse()
    storage.update(carrier)
    client.cookies["messages"] = carrier.cookies["messages"].value
    page = client.get("/t/ada/", HTTP_IF_NONE_MATCH=etag)
    assert page.status_code == 200
    assert "Your booking was cancelled." in page.content.decode()


def test_head_of_the_page_works(client, frozen, slot):
    etag = client.get("/t/ada/")["ETag"]
    assert client.head("/t/ada/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.head("/t/ada/").status_code == 200
