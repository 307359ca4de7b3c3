"""The tutor's settings page: booking rules and the private calendar feed."""

import pytest
from django.test import Client

from bookings.models import Tutor

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(tutor: Tutor) -> Client:
    client = Client()
    client.force_login(tutor.user)
    return client


def test_the_page_shows_the_feed_url(signed_in, tutor):
    page = signed_in.get("/tutor/settings/").content.decode()
    assert tutor.feed_url in page
    assert tutor.feed_webcal_url in page


def test_rotating_the_feed_kills_the_old_link(signed_in, tutor):
    old = f"/calendar/{tutor.feed_token}.ics"
    assert signed_in.get(old).status_code == 200
    response = signed_in.post("/tutor/settings/feed/rotate/")
    assert response.status_code == 302
    tutor.refresh_from_db()
    assert signed_in.get(old).status_code == 404
    assert signed_in.get(f"/calendar/{tutor.feed_token}.ics").status_code == 200


def test_the_tutor_changes_notice_buffer_and_refund_policy(signed_in, tutor):
    response = signed_in.post(
        "/tutor/settings/",
        {
            "display_name": "Ada P.",
            "headline": "",
            "bio": "",
            "email": "ada@example.com",
            "timezone": "America/New_York",
            "min_notice_minutes": 60,
            "travel_buffer_minutes": 45,
            "full_refund_hours": 48,
        },
    )
    assert response.status_code == 302
    tutor.refresh_from_db()
    assert (tutor.display_name, tutor.min_notice_minutes, tutor.full_refund_hours) == (
        "Ada P.",
        60,
        48,
    )


def test_a_bad_time_zone_is_explained_in_place(signed_in, tutor):
    response = signed_in.post(
        "/tutor/settings/",
        {"display_name": "Ada", "email": "ada@example.com", "timezone": "Mars/Olympus",
         "min_notice_minutes": 1, "travel_buffer_minutes": 1, "full_refund_hours": 1},
    )  # fmt: skip
    assert response.status_code == 200
    assert "is not an IANA time zone" in response.content.decode()
    tutor.refresh_from_db()
    assert tutor.timezone == "America/New_York"


def test_settings_need_a_signed_in_tutor(client):
    assert client.get("/tutor/settings/").status_code == 302
    assert client.post("/tutor/settings/feed/rotate/").status_code == 302
