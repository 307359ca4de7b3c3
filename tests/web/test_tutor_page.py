"""The home page and the tutor's public page with its slots (the whole horizon)."""

import json
from datetime import timedelta

import pytest

from bookings.models import Slot
from tests.conftest import hold, make_slot

pytestmark = pytest.mark.django_db


def picker(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="picker-data" type="application/json">') + 49
    return json.loads(html[start : html.index("</script>", start)])


def test_the_home_page_redirects_to_the_only_tutor(client, frozen, tutor):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/t/ada/"


def test_the_home_page_lists_tutors_when_there_are_several(client, frozen, tutor, make_tutor):
    make_tutor(slug="bo", display_name="Bo Chen")
    response = client.get("/")
    assert response.status_code == 200
    assert b"Ada Park" in response.content and b"Bo Chen" in response.content
    assert b'href="/t/bo/"' in response.content


def test_the_home_page_says_so_when_nobody_takes_bookings(client, frozen, db):
    response = client.get("/")
    assert response.status_code == 200
    assert b"No tutors are taking bookings yet." in response.content


def test_the_tutor_page_shows_who_they_are_and_both_prices(client, frozen, tutor, offerings):
    tutor.headline = "Python from scratch"
    tutor.save()
    response = client.get("/t/ada/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="tutor-name">Ada Park</h1>' in html
    assert "Python from scratch" in html
    assert "Remote (video)" in html and "$90.00" in html
    assert "In person (NYC)" in html and "$120.00" in html
    assert "Bryant Park Cafe, 40 W 40th St, New York, NY 10018" in html


def test_an_unknown_or_inactive_tutor_is_a_404(client, frozen, tutor):
    assert client.get("/t/nobody/").status_code == 404
    tutor.is_active = False
    tutor.save()
    assert client.get("/t/ada/").status_code == 404


def test_the_page_embeds_the_whole_horizon_of_open_slots_as_data(
    client, frozen, tutor, remote, in_person, now
):
    inside = [
        make_slot(tutor, now + timedelta(days=d), remote=remote, in_person=in_person)
        for d in (1, 10, 27, 54)
    ]
    make_slot(tutor, now + timedelta(days=60), remote=remote)  # beyond the 8-week horizon
    make_slot(tutor, now + timedelta(hours=3), remote=remote)  # inside the 12 h notice
    data = picker(client.get("/t/ada/"))
    assert data["days"] == 56
    assert [s["id"] for s in data["slots"]] == [s.pk for s in inside]
    first = data["slots"][0]
    assert first["start"] == "2026-12-03T15:00:00Z"
    assert first["end"] == "2026-12-03T16:00:00Z"
    assert first["modes"] == {"remote": "$90.00", "in_person": "$120.00"}


def test_a_held_slot_is_not_offered(client, api, frozen, slot):
    assert hold(api, slot).status_code == 201
    assert picker(client.get("/t/ada/"))["slots"] == []


def test_the_list_view_renders_the_slots_in_the_zone_asked_for(client, frozen, slot):
    response = client.get("/t/ada/?view=list&tz=Asia/Tokyo")
    html = response.content.decode()
    assert 'id="picker-data"' not in html
    # 2026-12-04 15:00 UTC is midnight on Saturday the 5th in Tokyo.
    assert "Saturday, December 5" in html
    assert "12:00 AM – 1:00 AM" in html
    assert f"?slot={slot.pk}&amp;tz=Asia/Tokyo" in html


def test_the_list_view_filters_by_mode(client, frozen, tutor, remote, in_person, now):
    remote_only = make_slot(tutor, now + timedelta(days=2), remote=remote)
    both = make_slot(tutor, now + timedelta(days=3), remote=remote, in_person=in_person)
    html = client.get("/t/ada/?view=list&mode=in_person").content.decode()
    assert f"slot={both.pk}&amp;mode=in_person" in html
    assert f"slot={remote_only.pk}" not in html


def test_a_bad_zone_falls_back_to_the_tutors_zone(client, frozen, slot):
    html = client.get("/t/ada/?view=list&tz=Mars/Base").content.decode()
    assert "Friday, December 4" in html and "10:00 AM – 11:00 AM" in html
    assert '<option value="America/New_York" selected>' in html


def test_the_page_stays_small_with_four_weeks_of_slots(client, frozen, weekly_rule):
    assert Slot.objects.count() > 20
    response = client.get("/t/ada/")
    assert len(picker(response)["slots"]) >= 20
    assert len(response.content) < 40_000
