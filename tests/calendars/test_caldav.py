"""CalDAV sources against a real CalDAV server (Radicale, started by the test): the
calendar's events become busy times like an ICS link's, with the password encrypted at
rest, and wrong credentials reported in plain words."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bookings.models import BusyInterval, Offering, Tutor
from bookings.selectors import open_slots
from calendars.models import CalendarSource, SourceKind

from . import feeds
from .conftest import MARCH, add_source, evening_rule, sync

pytest.importorskip("radicale", reason="radicale is in the dev extra; CI installs it")
caldav = pytest.importorskip("caldav")

NY = ZoneInfo("America/New_York")
USER, PASSWORD = "ada", "app-password-1234"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("radicale")
    users = root / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and a fixed module
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--storage-filesystem-folder",
            str(root / "collections"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(users),
            "--auth-htpasswd-encryption",
            "plain",
            "--auth-delay",
            "0",  # Radicale slows down failed logins by default
            "--rights-type",
            "owner_only",
            "--logging-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"Radicale did not start: {process.stderr.read()!r}") from None  # type: ignore[union-attr]
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def calendar_url(radicale: str) -> str:
    """A calendar collection holding the Google-shaped events, written over CalDAV."""
    client = caldav.DAVClient(url=f"{radicale}/{USER}/", username=USER, password=PASSWORD)
    calendar = client.principal().make_calendar(name="Personal", cal_id="personal")
    body = feeds.google().decode()
    # One resource per UID, as CalDAV stores them (the override travels with its series).
    header, _, rest = body.partition("BEGIN:VEVENT")
    events = ("BEGIN:VEVENT" + rest).rsplit("END:VCALENDAR", 1)[0].split("BEGIN:VEVENT")[1:]
    by_uid: dict[str, list[str]] = {}
    for event in events:
        uid = next(line for line in event.splitlines() if line.startswith("UID:"))
        by_uid.setdefault(uid, []).append("BEGIN:VEVENT" + event)
    for parts in by_uid.values():
        calendar.save_event(header + "".join(parts) + "END:VCALENDAR\r\n")
    return str(calendar.url)


@pytest.fixture
def evenings(tutor: Tutor, offerings: tuple[Offering, Offering]) -> Tutor:
    evening_rule(tutor, offerings, MARCH)
    return tutor


def test_a_caldav_calendar_hides_the_slots_it_is_busy_in(
    evenings: Tutor, calendar_url: str
) -> None:
    source = add_source(
        evenings, calendar_url, MARCH, kind=SourceKind.CALDAV, username=USER, password=PASSWORD
    )
    result = sync(source, MARCH)
    assert (result.outcome, result.busy) == ("changed", 7)
    starts = {
        row.slot.start.astimezone(NY)
        for row in open_slots(
            tutor=evenings, start=MARCH, end=MARCH + timedelta(days=27), now=MARCH
        )
    }
    assert datetime(2026, 3, 3, 18, tzinfo=NY) not in starts
    assert datetime(2026, 3, 10, 18, tzinfo=NY) not in starts  # after the DST change
    assert datetime(2026, 3, 17, 18, tzinfo=NY) in starts  # EXDATE
    assert datetime(2026, 3, 24, 18, tzinfo=NY) in starts  # moved to 20:00
    assert datetime(2026, 3, 24, 20, tzinfo=NY) not in starts
    assert datetime(2026, 3, 12, 18, tzinfo=NY) in starts  # cancelled
    # Unchanged on the server: nothing rewritten.
    assert sync(source, MARCH + timedelta(minutes=10)).outcome == "unchanged"


def test_the_password_is_stored_encrypted(evenings: Tutor, calendar_url: str) -> None:
    source = add_source(
        evenings, calendar_url, MARCH, kind=SourceKind.CALDAV, username=USER, password=PASSWORD
    )
    stored = CalendarSource.objects.filter(pk=source.pk).values_list("secret", flat=True).get()
    assert PASSWORD not in stored
    assert calendar_url not in stored
    assert USER not in stored


def test_wrong_credentials_are_reported_and_change_nothing(
    evenings: Tutor, calendar_url: str
) -> None:
    good = add_source(
        evenings, calendar_url, MARCH, kind=SourceKind.CALDAV, username=USER, password=PASSWORD
    )
    sync(good, MARCH)
    bad = add_source(
        evenings, calendar_url, MARCH, kind=SourceKind.CALDAV, username=USER, password="wrong"
    )
    result = sync(bad, MARCH)
    assert result.outcome == "failed"
    assert result.error == "127.0.0.1 refused the user name or password"
    assert BusyInterval.objects.filter(source=bad.pk).count() == 0
    assert BusyInterval.objects.filter(source=good.pk).count() == 7


def test_a_missing_collection_is_reported(
    evenings: Tutor, radicale: str, calendar_url: Any
) -> None:
    source = add_source(
        evenings,
        f"{radicale}/{USER}/no-such-calendar/",
        MARCH,
        kind=SourceKind.CALDAV,
        username=USER,
        password=PASSWORD,
    )
    result = sync(source, MARCH)
    assert result.outcome == "failed"
    assert "127.0.0.1" in result.error
