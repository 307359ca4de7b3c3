"""The tutor sees a weekly series as such: on the dashboard and on a session's page, a
week of a series names its place ("Weekly series · week 3 of 10") and links to the
series' other sessions."""

import html as htmllib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings.models import Booking, BookingStatus
from tests.conftest import make_series

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


def series_links(page: str) -> list[str]:
    """The booking pages each series block on the page links to, in order."""
    blocks = re.findall(r'<details class="series".*?</details>', page, flags=re.S)
    return [link for block in blocks for link in re.findall(r'href="(/tutor/[^"]+)"', block)]


def test_the_dashboard_names_a_sessions_week_and_links_the_others(tutor_client, tutor, remote, now):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=4, skip=(2,))
    _, week3, week4 = series.bookings.order_by("series_week")

    page = htmllib.unescape(tutor_client.get("/tutor/").content.decode())

    assert "Weekly series · week 1 of 4" in page
    assert "Weekly series · week 3 of 4" in page
    assert "Weekly series · week 4 of 4" in page
    # Each row links to the two other sessions; the skipped week is no session.
    assert series_links(page)[:2] == [
        f"/tutor/bookings/{week3.pk}/",
        f"/tutor/bookings/{week4.pk}/",
    ]
    assert "Week 2:" not in page


def test_a_sessions_page_shows_its_series_and_the_other_weeks(tutor_client, tutor, remote, now):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=3)
    week1, week2, week3 = series.bookings.order_by("series_week")
    Booking.objects.filter(pk=week3.pk).update(status=BookingStatus.CANCELLED)

    page = htmllib.unescape(tutor_client.get(f"/tutor/bookings/{week2.pk}/").content.decode())

    assert "Weekly series · week 2 of 3" in page
    assert series_links(page) == [f"/tutor/bookings/{week1.pk}/", f"/tutor/bookings/{week3.pk}/"]
    assert "(cancelled)" in page


def test_a_single_session_shows_no_series(tutor_client, tutor, remote, now):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=2)
    single = series.bookings.first()
    assert single is not None
    Booking.objects.filter(pk=single.pk).update(series=None, series_week=None)

    page = tutor_client.get(f"/tutor/bookings/{single.pk}/").content.decode()

    assert "Weekly series" not in page


def test_the_dashboard_reads_any_number_of_series_in_the_same_queries(
    tutor_client, tutor, remote, now
):
    def dashboard_queries(show: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert tutor_client.get("/tutor/", {"show": show}).status_code == 200
        return len(queries)

    make_series(tutor, remote, now + timedelta(days=1), weeks=2)
    few = {show: dashboard_queries(show) for show in ("upcoming", "all")}
    make_series(tutor, remote, now + timedelta(days=1, hours=2), weeks=5, email="b@example.com")
    make_series(tutor, remote, now + timedelta(days=1, hours=4), weeks=5, email="c@example.com")

    assert {show: dashboard_queries(show) for show in ("upcoming", "all")} == few


def test_another_tutors_series_session_is_not_found(client, make_tutor, tutor, remote, now, frozen):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=2)
    other = make_tutor(slug="other")
    client.force_login(other.user)

    session = series.bookings.first()
    response = client.get(f"/tutor/bookings/{session.pk}/")

    assert response.status_code == 404
