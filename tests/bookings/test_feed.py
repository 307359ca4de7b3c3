"""GET /calendar/<token>.ics: the tutor's feed, as calendar apps poll it.

An unchanged feed is the same bytes on every fetch and costs a 304; any change to what
it shows (a booking, an offering's link) gives a new ETag; HEAD answers like GET
without the body; the calendar asks to be fetched again every 30 minutes.
"""

from datetime import timedelta

import icalendar
import pytest
from django.utils.http import http_date
from ical.calendar_stream import IcsCalendarStream

from bookings import services
from bookings.models import Booking, Offering
from tests.bookings.test_notifications import confirmed, deliver_at_once  # noqa: F401
from tests.conftest import add_offerings, make_series, make_slot

pytestmark = pytest.mark.django_db


def feed_url(tutor) -> str:
    return f"/calendar/{tutor.feed_token}.ics"


def test_an_unchanged_feed_is_the_same_bytes_and_a_304_when_asked_with_its_etag(
    client, slot, tutor, now, frozen
):
    confirmed(slot, now=now)
    first = client.get(feed_url(tutor))
    assert first.status_code == 200
    frozen.shift(timedelta(hours=3))  # time alone changes nothing in it
    second = client.get(feed_url(tutor))
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]

    again = client.get(feed_url(tutor), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    # A weak form of the same tag matches too (If-None-Match compares weakly).
    weak = client.get(feed_url(tutor), HTTP_IF_NONE_MATCH=f'"nope", W/{first["ETag"]}')
    assert weak.status_code == 304
    assert client.get(feed_url(tutor), HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_each_events_dtstamp_is_when_its_booking_last_changed(client, slot, tutor, now, frozen):
    booking = confirmed(slot, now=now)
    frozen.shift(timedelta(days=1))
    (event,) = icalendar.Calendar.from_ical(client.get(feed_url(tutor)).content).walk("VEVENT")
    booking.refresh_from_db()
    assert event.decoded("DTSTAMP") == booking.updated_at.replace(microsecond=0)
    assert event.decoded("DTSTAMP") == now


def test_a_new_booking_a_cancellation_or_a_new_video_link_changes_the_etag(
    client, slot, tutor, remote, now, frozen
):
    booking = confirmed(slot, now=now)
    tags = [client.get(feed_url(tutor))["ETag"]]

    frozen.shift(timedelta(minutes=5))
    confirmed(make_slot(tutor, now + timedelta(days=5), remote=remote), now=now)
    tags.append(client.get(feed_url(tutor))["ETag"])

    Offering.objects.filter(pk=remote.pk).update(video_url="https://meet.example.com/new")
    response = client.get(feed_url(tutor), HTTP_IF_NONE_MATCH=tags[-1])
    assert response.status_code == 200  # no booking changed, yet the feed did
    assert b"meet.example.com/new" in response.content
    tags.append(response["ETag"])

    services.booking_cancel(booking_id=booking.pk, actor="tutor", now=now)
    response = client.get(feed_url(tutor), HTTP_IF_NONE_MATCH=tags[-1])
    assert response.status_code == 200
    assert len(icalendar.Calendar.from_ical(response.content).walk("VEVENT")) == 1
    tags.append(response["ETag"])
    assert len(set(tags)) == 4


def test_last_modified_is_the_newest_booking_change_and_a_date_alone_earns_no_304(
    client, slot, tutor, now, frozen
):
    confirmed(slot, now=now)
    response = client.get(feed_url(tutor))
    assert response["Last-Modified"] == http_date(now.timestamp())
    later = http_date((now + timedelta(days=1)).timestamp())
    # An offering's edit would change the feed with no booking changing: only the
    # digest proves a copy current.
    assert client.get(feed_url(tutor), HTTP_IF_MODIFIED_SINCE=later).status_code == 200


def test_head_answers_the_headers_of_get_without_the_body(client, slot, tutor, now):
    confirmed(slot, now=now)
    get = client.get(feed_url(tutor))
    head = client.head(feed_url(tutor))
    assert head.status_code == 200
    assert head.content == b""
    for header in ("ETag", "Last-Modified", "Content-Type", "Cache-Control"):
        assert head[header] == get[header]
    assert head["Content-Length"] == str(len(get.content))
    assert client.post(feed_url(tutor)).status_code == 405


def test_the_feed_asks_to_be_fetched_again_every_half_hour_and_parses_strictly(
    client, slot, tutor, now
):
    booking = confirmed(slot, now=now)
    body = client.get(feed_url(tutor)).content
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT30M\r\n" in body
    assert b"X-PUBLISHED-TTL:PT30M\r\n" in body
    strict = IcsCalendarStream.calendar_from_ics(body.decode("utf-8"))
    assert strict.method is None  # a published calendar, not an iTIP message
    assert strict.refresh_interval == timedelta(minutes=30)
    (event,) = strict.events
    assert event.uid == booking.calendar_uid
    assert event.attendees == []
    assert event.conference[0].uri == "https://meet.example.com/room"


def test_a_tutors_feed_never_shows_another_tutors_sessions(client, slot, tutor, make_tutor, now):
    mine = confirmed(slot, now=now)
    other = make_tutor(slug="bo", display_name="Bo Lee", email="bo@example.com")
    remote, _ = add_offerings(other)
    theirs = confirmed(make_slot(other, now + timedelta(days=3), remote=remote), now=now)
    uids = {
        str(e["UID"])
        for e in icalendar.Calendar.from_ical(client.get(feed_url(tutor)).content).walk("VEVENT")
    }
    assert uids == {mine.calendar_uid}
    their_feed = client.get(feed_url(other)).content
    assert theirs.calendar_uid.encode() in their_feed
    assert b"Sam Student" in their_feed and mine.calendar_uid.encode() not in their_feed
    assert Booking.objects.count() == 2


def test_a_series_sessions_name_their_series_and_the_feed_stays_the_same_bytes(
    client, tutor, remote, now, frozen
):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=3, skip=(2,))
    first = client.get(feed_url(tutor))

    events = icalendar.Calendar.from_ical(first.content).walk("VEVENT")
    assert len(events) == 2
    for event, week in zip(events, (1, 3), strict=True):
        assert str(event["RELATED-TO"]) == series.calendar_uid
        assert event["RELATED-TO"].params["RELTYPE"] == "PARENT"
        assert event.get("CATEGORIES").cats == [
            "Weekly series",
            "Weekly series: Sam Student",
            f"Week {week} of 3",
        ]
    # A strict parser reads it, and an unchanged feed is still a 304.
    strict = IcsCalendarStream.calendar_from_ics(first.content.decode())
    assert len(strict.events) == 2
    frozen.shift(timedelta(hours=1))
    again = client.get(feed_url(tutor), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
