"""The whole horizon (8 weeks) on the tutor page, its no-JavaScript list and the
reschedule page, for the same number of queries however many slots there are."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings.models import Slot
from tests.conftest import make_slot

from .conftest import confirm, hold_slot
from .test_tutor_page import picker

pytestmark = pytest.mark.django_db


@pytest.fixture
def far(tutor, remote, in_person, now):
    """Seven weeks ahead: beyond the old four-week picker, inside the 8-week horizon."""
    return make_slot(tutor, now + timedelta(days=49), remote=remote, in_person=in_person)


def test_the_picker_data_spans_the_horizon(client, frozen, slot, far):
    data = picker(client.get("/t/ada/"))
    assert data["days"] == 56
    assert [s["id"] for s in data["slots"]] == [slot.pk, far.pk]


def test_the_page_draws_a_month_calendar_with_month_buttons(client, frozen, slot):
    html = client.get("/t/ada/").content.decode()
    assert 'aria-label="Previous month"' in html and 'aria-label="Next month"' in html
    assert "data-month" in html and 'class="days month"' in html


def test_the_list_view_lists_the_whole_horizon_grouped_by_day(client, frozen, slot, far):
    html = client.get("/t/ada/?view=list&tz=Europe/Berlin").content.decode()
    # 2026-12-04 15:00 UTC and 2027-01-20 15:00 UTC, 16:00 in Berlin.
    assert '<h3 class="day-heading">Friday, December 4</h3>' in html
    assert '<h3 class="day-heading">Wednesday, January 20</h3>' in html
    assert f"?slot={far.pk}&amp;tz=Europe/Berlin" in html
    assert html.index("Friday, December 4") < html.index("Wednesday, January 20")


def test_the_list_view_says_how_far_it_looks_when_empty(client, frozen, tutor, offerings):
    html = client.get("/t/ada/?view=list").content.decode()
    assert "No open times in the next 8 weeks." in html


def test_the_reschedule_page_offers_the_whole_horizon(client, frozen, slot, far, now):
    booking = confirm(hold_slot(slot, now=now), now=now)
    data = picker(client.get(f"{booking.manage_path}reschedule/"))
    assert [s["id"] for s in data["slots"]] == [far.pk]
    html = client.get(f"{booking.manage_path}reschedule/?view=list").content.decode()
    assert f"slot={far.pk}" in html


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("path", ["/t/ada/", "/t/ada/?view=list&tz=Asia/Kolkata"])
def test_the_tutor_page_makes_as_many_queries_for_many_slots_as_for_few(
    client, frozen, tutor, remote, in_person, now, path
):
    make_slot(tutor, now + timedelta(days=1), remote=remote, in_person=in_person)
    few = _queries(client, path)
    for day in range(2, 55):
        make_slot(tutor, now + timedelta(days=day), remote=remote, in_person=in_person)
        make_slot(tutor, now + timedelta(days=day, hours=2), remote=remote)
    assert _queries(client, path) == few


def test_eight_weeks_of_slots_keep_the_page_small(client, frozen, weekly_rule):
    assert Slot.objects.count() >= 8 * 2 * 3  # Tue and Thu, three slots, eight weeks
    response = client.get("/t/ada/")
    assert len(picker(response)["slots"]) >= 45
    assert len(response.content) < 60_000
