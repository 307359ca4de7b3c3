"""The fetcher refuses private, loopback and link-local addresses (SSRF) when
CALENDAR_ALLOW_PRIVATE_ADDRESSES is off, as it is in production: directly, through a
redirect, and through a host name that resolves to one."""

import ipaddress
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendars import fetch
from tests.test_settings import example_env, manage

from .conftest import FeedServer


@pytest.fixture(autouse=True)
def production_like(calendar_settings: Any) -> None:
    calendar_settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False


def test_production_settings_refuse_private_addresses() -> None:
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES)",
        env=example_env(),
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/feed.ics",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::1]:{port}/feed.ics",
        "http://10.0.0.1/feed.ics",
        "http://192.168.1.1/feed.ics",
        "http://[::ffff:127.0.0.1]:{port}/feed.ics",
        "http://0.0.0.0:{port}/feed.ics",
        "http://localhost:{port}/feed.ics",  # a host name that resolves to loopback
    ],
)
def test_private_addresses_are_refused_before_connecting(
    feeds_server: FeedServer, url: str
) -> None:
    feeds_server.serve("/feed.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    with pytest.raises(fetch.Refused, match="is a private or local address"):
        fetch.fetch_ics(url.format(port=feeds_server.port))
    assert feeds_server.requests == []


@pytest.fixture
def loopback_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 stands in for a public calendar server, so a redirect can be followed
    to where it points; every other private address is still refused."""
    real = fetch.is_public
    stand_in = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(fetch, "is_public", lambda ip: ip == stand_in or real(ip))


@pytest.mark.usefixtures("loopback_as_public")
@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://[::1]:{port}/feed.ics",
        "http://127.0.0.2:{port}/feed.ics",
        "https://[fd00::1]/",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(feeds_server: FeedServer, target: str) -> None:
    feeds_server.serve("/feed.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    url = feeds_server.redirect("/public.ics", target.format(port=feeds_server.port))
    with pytest.raises(fetch.Refused, match="is a private or local address"):
        fetch.fetch_ics(url)
    assert [path for path, _ in feeds_server.requests] == ["/public.ics"]


def test_a_name_with_one_private_answer_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(fetch.Refused, match=r"rebind.example is a private or local address"):
        fetch.fetch_ics("https://rebind.example/cal.ics")


def test_caldav_is_guarded_the_same_way(feeds_server: FeedServer) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(fetch.Refused):
        fetch.caldav_events(
            feeds_server.url("/dav/ada/calendar/"),
            username="ada",
            password="secret",
            start=start,
            end=start + timedelta(days=7),
        )
    assert feeds_server.requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around 169.254.169.254
        ("64:ff9b::5db8:d70e", True),  # NAT64 around a public address
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert fetch.is_public(ipaddress.ip_address(address)) is public
