"""calendars.fetch against a local HTTP server: conditional GET, timeouts, size limits,
redirects, compression; every failure in words a tutor can act on."""

from datetime import UTC, datetime

import pytest

from calendars import fetch

from . import feeds
from .conftest import FeedServer

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def test_a_calendar_is_fetched_with_its_validators(feeds_server: FeedServer) -> None:
    url = feeds_server.serve(
        "/google.ics",
        feeds.google(),
        etag='"v1"',
        headers={"Last-Modified": "Sun, 01 Mar 2026 12:00:00 GMT", "Content-Type": "text/calendar"},
    )
    got = fetch.fetch_ics(url)
    assert got.body == feeds.google()
    assert (got.etag, got.last_modified) == ('"v1"', "Sun, 01 Mar 2026 12:00:00 GMT")


def test_an_unchanged_calendar_answers_304_to_its_etag(feeds_server: FeedServer) -> None:
    url = feeds_server.serve("/google.ics", feeds.google(), etag='"v1"')
    got = fetch.fetch_ics(url, etag='"v1"', last_modified="Sun, 01 Mar 2026 12:00:00 GMT")
    assert got.body is None
    _, headers = feeds_server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Sun, 01 Mar 2026 12:00:00 GMT"


def test_a_gzipped_calendar_is_read_decompressed(feeds_server: FeedServer) -> None:
    url = feeds_server.serve("/gz.ics", feeds.icloud(), gzip=True)
    assert fetch.fetch_ics(url).body == feeds.icloud()


def test_an_error_status_is_reported_with_its_host(feeds_server: FeedServer) -> None:
    url = feeds_server.url("/missing.ics", host="localhost")
    with pytest.raises(fetch.FetchError, match=r"^404 from localhost$"):
        fetch.fetch_ics(url)


def test_a_server_that_hangs_is_given_up_on_after_the_timeout(
    feeds_server: FeedServer, settings: object
) -> None:
    settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 0.5  # type: ignore[attr-defined]
    url = feeds_server.serve("/hang.ics", hang=True)
    with pytest.raises(fetch.FetchError, match=r"127.0.0.1 did not answer within 0.5 seconds"):
        fetch.fetch_ics(url)


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline(
    feeds_server: FeedServer, settings: object
) -> None:
    # A byte every 50 ms keeps each socket read alive, so only the whole fetch's
    # deadline can end it: the server never gets to send the last byte (4 s in).
    settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 0.5  # type: ignore[attr-defined]
    body = b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"a" * 60 + b"\r\nEND:VCALENDAR\r\n"
    url = feeds_server.serve("/slow.ics", body, trickle=0.05)
    with pytest.raises(fetch.FetchError, match=r"127.0.0.1 did not answer within 0.5 seconds"):
        fetch.fetch_ics(url)
    feeds_server.wait_handled()
    assert feeds_server.finished == []


def test_a_caldav_server_that_hangs_is_given_up_on_after_the_timeout(
    feeds_server: FeedServer, settings: object
) -> None:
    settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 0.5  # type: ignore[attr-defined]
    url = feeds_server.serve("/dav/", hang=True)
    with pytest.raises(fetch.FetchError, match=r"127.0.0.1 did not answer within 0.5 seconds"):
        fetch.caldav_events(url, username="ada", password="pw", start=MARCH, end=APRIL)


@pytest.mark.parametrize(
    "answer",
    [
        {"body": b"<html><body>Sign in</body></html>", "headers": {"Content-Type": "text/html"}},
        {"body": feeds.google(), "status": 207, "headers": {"Content-Type": "text/xml"}},
        {"body": b"", "status": 302},  # a redirect without a Location
    ],
)
def test_a_server_that_is_not_caldav_is_reported_in_plain_words(
    feeds_server: FeedServer, answer: dict[str, object]
) -> None:
    url = feeds_server.serve("/dav/", **answer)  # type: ignore[arg-type]
    with pytest.raises(
        fetch.FetchError, match=r"^127.0.0.1 did not answer like a CalDAV calendar$"
    ):
        fetch.caldav_events(url, username="ada", password="pw", start=MARCH, end=APRIL)


def test_a_declared_body_over_the_limit_is_refused_unread(
    feeds_server: FeedServer, settings: object
) -> None:
    settings.CALENDAR_MAX_BYTES = 100_000  # type: ignore[attr-defined]
    body = feeds.many_events(2000, first=feeds.datetime(2026, 3, 1, tzinfo=feeds.UTC))
    url = feeds_server.serve("/big.ics", body)
    with pytest.raises(fetch.FetchError, match="larger than 98 KB"):
        fetch.fetch_ics(url)


def test_a_streamed_or_compressed_body_over_the_limit_is_cut_off(
    feeds_server: FeedServer, settings: object
) -> None:
    settings.CALENDAR_MAX_BYTES = 1024 * 1024  # type: ignore[attr-defined]
    body = b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"a" * (3 * 1024 * 1024) + b"\r\nEND:VCALENDAR\r\n"
    chunked = feeds_server.serve("/chunked.ics", body, chunked=True)
    bomb = feeds_server.serve("/bomb.ics", body, gzip=True)  # ~3 KB on the wire
    for url in (chunked, bomb):
        with pytest.raises(fetch.FetchError, match="larger than 1 MB"):
            fetch.fetch_ics(url)


def test_the_size_limit_is_enforced_while_the_body_streams_in(
    feeds_server: FeedServer, settings: object
) -> None:
    # A server that never stops sending: only counting while reading ends the fetch
    # (reading it all first would run into the timeout instead).
    settings.CALENDAR_MAX_BYTES = 1024 * 1024  # type: ignore[attr-defined]
    settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 30  # type: ignore[attr-defined]
    url = feeds_server.serve("/endless.ics", b"BEGIN:VCALENDAR\r\n", endless=True)
    with pytest.raises(fetch.FetchError, match="larger than 1 MB"):
        fetch.fetch_ics(url)


def test_redirects_are_followed_a_few_times(feeds_server: FeedServer) -> None:
    target = feeds_server.serve("/final.ics", feeds.google())
    feeds_server.redirect("/hop2", target, status=301)
    first = feeds_server.redirect("/hop1", "/hop2", status=307)
    assert fetch.fetch_ics(first).body == feeds.google()


def test_too_many_redirects_are_refused(feeds_server: FeedServer) -> None:
    for i in range(5):
        feeds_server.redirect(f"/r{i}", f"/r{i + 1}")
    with pytest.raises(fetch.FetchError, match=r"too many redirects from 127.0.0.1"):
        fetch.fetch_ics(feeds_server.url("/r0"))


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "http://127.0.0.1:25/"]
)
def test_a_redirect_to_another_scheme_or_a_mail_port_is_refused(
    feeds_server: FeedServer, target: str
) -> None:
    url = feeds_server.redirect("/elsewhere", target)
    with pytest.raises(fetch.FetchError, match="redirected to a non-web address"):
        fetch.fetch_ics(url)
    assert [path for path, _ in feeds_server.requests] == ["/elsewhere"]


def test_credentials_go_to_the_first_host_only(feeds_server: FeedServer) -> None:
    target = feeds_server.serve("/final.ics", feeds.google())
    other_host = target.replace("127.0.0.1", "localhost")
    url = feeds_server.redirect("/private.ics", other_host)
    fetch.fetch_ics(url, username="ada", password="app-password")
    (_, first), (_, second) = feeds_server.requests
    assert first["Authorization"].startswith("Basic ")
    assert "Authorization" not in second


def test_an_unknown_host_says_so() -> None:
    with pytest.raises(fetch.FetchError, match=r"no such host: calendar.invalid"):
        fetch.fetch_ics("https://calendar.invalid/basic.ics")


def test_a_closed_port_says_it_could_not_connect(feeds_server: FeedServer) -> None:
    url = feeds_server.url("/x.ics")
    feeds_server.stop()
    with pytest.raises(fetch.FetchError, match=r"could not connect to 127.0.0.1"):
        fetch.fetch_ics(url)


@pytest.mark.parametrize(
    ("typed", "fetched"),
    [
        ("webcal://p01-caldav.icloud.com/published/2/abc", "https://p01-caldav.icloud.com/published/2/abc"),
        ("https://calendar.google.com/calendar/ical/x%40gmail.com/private-abc/basic.ics",
         "https://calendar.google.com/calendar/ical/x%40gmail.com/private-abc/basic.ics"),
        ("  HTTP://Example.com  ", "http://Example.com/"),
    ],
)  # fmt: skip
def test_webcal_and_https_links_are_accepted(typed: str, fetched: str) -> None:
    assert fetch.normalise_url(typed) == fetched


@pytest.mark.parametrize(
    "typed",
    ["ftp://example.com/a.ics", "file:///etc/passwd", "gopher://x", "https://", "example.com/a.ics",
     "https://user:pw@example.com/a.ics", "https://example.com:99999/", "javascript:alert(1)",
     "data:text/calendar,BEGIN:VCALENDAR", "https://[::1/"],
)  # fmt: skip
def test_other_links_are_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        fetch.normalise_url(typed)


@pytest.mark.parametrize(
    "typed",
    ["https://exa\nmple.com/a.ics", "https://example.com/a\tb.ics", "https://example.com/a b.ics",
     "https://example.com/\x00.ics", "https://example.com/\x85a", "https://example.com/\u2028a"],
)  # fmt: skip
def test_control_characters_and_spaces_inside_a_link_are_refused(typed: str) -> None:
    # urlsplit would silently drop tabs and line breaks: "exa\nmple.com" is not example.com.
    with pytest.raises(ValueError, match="spaces, line breaks or control characters"):
        fetch.normalise_url(typed)


@pytest.mark.parametrize("port", [25, 22, 53, 110, 143, 465, 587, 993, 6667])
def test_other_protocols_ports_are_refused(port: int) -> None:
    with pytest.raises(ValueError, match=f"Port {port} is not a web port"):
        fetch.normalise_url(f"https://calendar.example.com:{port}/a.ics")


@pytest.mark.parametrize("port", [80, 443, 8080, 8443, 5232])
def test_web_and_self_hosted_calendar_ports_are_accepted(port: int) -> None:
    url = f"https://calendar.example.com:{port}/a.ics"
    assert fetch.normalise_url(url) == url
