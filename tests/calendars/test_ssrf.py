"""The fetcher refuses private, loopback and link-local addresses (SSRF) when
CALENDAR_ALLOW_PRIVATE_ADDRESSES is off, as it is in production: directly, through a
redirect, and through a host name that resolves to one."""

import ipaddress
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bookings.models import BusyInterval, Tutor
from calendars import fetch
from tests.test_settings import example_env, manage

from .conftest import FeedServer, add_source, sync


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
        "https://[fc00::1]/",
        "webcal://169.254.169.254/latest/",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(feeds_server: FeedServer, target: str) -> None:
    feeds_server.serve("/feed.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    url = feeds_server.redirect("/public.ics", target.format(port=feeds_server.port))
    with pytest.raises(fetch.Refused, match="is a private or local address"):
        fetch.fetch_ics(url)
    assert [path for path, _ in feeds_server.requests] == ["/public.ics"]


@pytest.mark.parametrize(
    "answer", ["169.254.169.254", "10.1.2.3", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1"]
)
def test_a_public_looking_name_that_resolves_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    family = socket.AF_INET6 if ":" in answer else socket.AF_INET
    connected: list[Any] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(family, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a))
    with pytest.raises(fetch.Refused, match=r"calendar.example.com is a private or local address"):
        fetch.fetch_ics("https://calendar.example.com/basic.ics")
    assert connected == []


def test_a_webcal_link_to_loopback_is_refused(feeds_server: FeedServer) -> None:
    url = fetch.normalise_url(f"webcal://127.0.0.1:{feeds_server.port}/feed.ics")
    assert url.startswith("https://127.0.0.1:")
    with pytest.raises(fetch.Refused):
        fetch.fetch_ics(url)
    assert feeds_server.requests == []


def test_a_source_pointing_at_the_metadata_service_fails_its_sync_and_stores_nothing(
    tutor: Tutor,
) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    source = add_source(tutor, "http://169.254.169.254/latest/meta-data/", now)
    result = sync(source, now)
    assert result.error == "169.254.169.254 is a private or local address: not fetched"
    source.refresh_from_db()
    assert source.last_error == result.error
    assert not BusyInterval.objects.filter(source=source.pk).exists()


def test_check_deploy_warns_when_private_addresses_are_allowed() -> None:
    env = {**example_env(), "CALENDAR_ALLOW_PRIVATE_ADDRESSES": "true"}
    result = manage("check", "--deploy", env=env)
    assert "calendars.W001" in result.stderr + result.stdout
    clean = manage("check", "--deploy", env=example_env())
    assert "calendars.W001" not in clean.stderr + clean.stdout


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
        ("fc00::1", False),  # unique local, the other half of fc00::/7
        ("::", False),
        ("::ffff:169.254.169.254", False),
        ("2001:db8::1", False),  # documentation
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around 169.254.169.254
        ("64:ff9b::5db8:d70e", True),  # NAT64 around a public address
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert fetch.is_public(ipaddress.ip_address(address)) is public
