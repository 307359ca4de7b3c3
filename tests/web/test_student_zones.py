"""The time zone picker: current canonical names, offsets and local times in the options,
and a JavaScript table of old names that matches the server's."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bookings import zones
from bookings.models import Booking, is_timezone
from bookings.web import presenters

from .test_book import form

pytestmark = pytest.mark.django_db

SITE_JS = Path(__file__).resolve().parents[2] / "bookings" / "static" / "bookings" / "site.js"


def test_old_zone_names_become_their_current_ones():
    assert zones.canonical("Asia/Calcutta") == "Asia/Kolkata"
    assert zones.canonical("Europe/Kiev") == "Europe/Kyiv"
    assert zones.canonical("Europe/Berlin") == "Europe/Berlin"
    for new in zones.LEGACY_ZONES.values():
        assert is_timezone(new), new
        assert new not in zones.LEGACY_ZONES, new


def test_the_scripts_table_of_old_names_is_the_servers():
    source = SITE_JS.read_text()
    body = re.search(r"var LEGACY_ZONES = (\{.*?\});", source, re.S)
    assert body is not None
    assert json.loads(body.group(1)) == zones.LEGACY_ZONES


def test_the_options_show_each_zones_local_time_and_offset():
    at = datetime(2026, 12, 2, 13, 5, tzinfo=UTC)
    assert presenters.zone_option_label("Europe/Berlin", at) == "Europe/Berlin — 14:05, UTC+1"
    assert presenters.zone_option_label("Asia/Kolkata", at) == "Asia/Kolkata — 18:35, UTC+5:30"
    assert presenters.zone_option_label("America/Los_Angeles", at) == (
        "America/Los Angeles — 05:05, UTC-8"
    )
    assert presenters.zone_option_label("UTC", at) == "UTC — 13:05, UTC"


def test_the_page_offers_friendly_options_without_javascript(client, frozen, slot):
    html = client.get("/t/ada/?tz=Europe/Berlin").content.decode()
    assert '<option value="Europe/Berlin" selected>Europe/Berlin — 16:00, UTC+1</option>' in html
    assert '<option value="Asia/Kolkata">Asia/Kolkata — 20:30, UTC+5:30</option>' in html
    assert 'id="tz-search"' in html and "data-clock-toggle" in html


def test_an_old_zone_name_is_shown_and_kept_by_its_current_name(client, frozen, slot):
    html = client.get(f"/t/ada/book/?slot={slot.pk}&tz=Asia/Calcutta").content.decode()
    assert 'name="student_timezone" value="Asia/Kolkata"' in html
    assert "Calcutta" not in html
    html = client.get("/t/ada/?tz=Asia/Calcutta").content.decode()
    assert '<option value="Asia/Kolkata" selected>' in html
    assert "Calcutta" not in html


def test_a_booking_made_with_an_old_zone_name_stores_the_current_one(client, frozen, slot):
    response = client.post("/t/ada/book/", form(slot, student_timezone="Asia/Calcutta"))
    assert response.status_code == 302
    assert Booking.objects.get().student_timezone == "Asia/Kolkata"
