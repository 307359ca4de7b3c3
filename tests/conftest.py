"""Shared fixtures: a tutor with remote and NYC offerings, times under test control.

Service-backed tests carry a marker:
- `postgres`: needs DATABASE_URL on PostgreSQL. On SQLite they are deselected (they
  belong to CI's PostgreSQL pass); with REQUIRE_POSTGRES=1 a SQLite run is an error.
- `redis`: needs CELERY_BROKER_URL on a reachable Redis. Skipped on a machine without
  it, but in CI (CI=true) an unreachable Redis fails the run instead.
"""

import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from bookings import services
from bookings.models import Mode, Offering, Slot, SlotSource, Tutor


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def _redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 2):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    in_ci = os.environ.get("CI") == "true"
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not _is_postgres():
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL.")
    keep, drop = [], []
    broker = settings.CELERY_BROKER_URL
    for item in items:
        if item.get_closest_marker("postgres") and not _is_postgres():
            drop.append(item)
            continue
        if item.get_closest_marker("redis"):
            if not broker.startswith("redis://"):
                drop.append(item)
                continue
            if not _redis_reachable(broker):
                if in_ci:
                    raise pytest.UsageError(f"CI needs Redis at {broker} and cannot reach it.")
                item.add_marker(pytest.mark.skip(reason=f"Redis not reachable at {broker}"))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- time ---------------------------------------------------------------------------------

# A Wednesday, well inside standard time in New York; DST tests pick their own dates.
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def frozen(now: datetime) -> Iterator[Any]:
    """Freeze the clock the views read (timezone.now()) at NOW; tick forward with .shift()."""
    import time_machine

    with time_machine.travel(now, tick=False) as traveller:
        yield traveller


# --- people and offerings -------------------------------------------------------------------


@pytest.fixture
def make_tutor(db: None) -> Callable[..., Tutor]:
    counter = {"n": 0}

    def make(**fields: Any) -> Tutor:
        counter["n"] += 1
        n = counter["n"]
        user = get_user_model().objects.create_user(
            username=fields.pop("username", f"tutor{n}"), password="pw-for-tests"
        )
        defaults: dict[str, Any] = {
            "slug": f"tutor-{n}",
            "display_name": f"Tutor {n}",
            "email": f"tutor{n}@example.com",
            "timezone": "America/New_York",
        }
        defaults.update(fields)
        return Tutor.objects.create(user=user, **defaults)

    return make


def add_offerings(tutor: Tutor, *, minutes: int = 60) -> tuple[Offering, Offering]:
    remote = Offering.objects.create(
        tutor=tutor,
        mode=Mode.REMOTE,
        title="Python (video)",
        duration_minutes=minutes,
        price_amount=9000,
        currency="usd",
        video_url="https://meet.example.com/room",
    )
    in_person = Offering.objects.create(
        tutor=tutor,
        mode=Mode.IN_PERSON,
        title="Python (in person)",
        duration_minutes=minutes,
        price_amount=12000,
        currency="usd",
        place_name="Bryant Park Cafe",
        place_address="40 W 40th St, New York, NY 10018",
    )
    return remote, in_person


@pytest.fixture
def tutor(make_tutor: Callable[..., Tutor]) -> Tutor:
    return make_tutor(slug="ada", display_name="Ada Park", email="ada@example.com")


@pytest.fixture
def offerings(tutor: Tutor) -> tuple[Offering, Offering]:
    return add_offerings(tutor)


@pytest.fixture
def remote(offerings: tuple[Offering, Offering]) -> Offering:
    return offerings[0]


@pytest.fixture
def in_person(offerings: tuple[Offering, Offering]) -> Offering:
    return offerings[1]


def make_slot(
    tutor: Tutor,
    start: datetime,
    *,
    remote: Offering | None = None,
    in_person: Offering | None = None,
    minutes: int = 60,
) -> Slot:
    return Slot.objects.create(
        tutor=tutor,
        start=start,
        end=start + timedelta(minutes=minutes),
        source=SlotSource.ONE_OFF,
        remote_offering=remote,
        in_person_offering=in_person,
    )


@pytest.fixture
def slot(tutor: Tutor, remote: Offering, in_person: Offering, now: datetime) -> Slot:
    """Both modes, two days ahead (well past the 12 h notice and the 24 h refund line)."""
    return make_slot(tutor, now + timedelta(days=2), remote=remote, in_person=in_person)


@pytest.fixture
def weekly_rule(tutor: Tutor, remote: Offering, in_person: Offering, now: datetime) -> Any:
    """Tue and Thu 18:00–21:00 New York, both modes."""
    return services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[2, 4],
        start_time=time(18, 0),
        end_time=time(21, 0),
        offerings=[remote, in_person],
    )


# --- HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def tutor_api(tutor: Tutor) -> APIClient:
    client = APIClient()
    client.force_authenticate(tutor.user)
    return client


def hold(
    api: APIClient,
    slot: Slot,
    *,
    mode: str = "remote",
    email: str = "sam@example.com",
    **extra: Any,
) -> Any:
    body = {
        "slot": slot.pk,
        "mode": mode,
        "student_name": "Sam Student",
        "student_email": email,
        "notes": "Decorators, please",
        **extra,
    }
    return api.post("/api/bookings/", body, format="json")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def make_series(
    tutor: Tutor,
    offering: Offering,
    first: datetime,
    *,
    weeks: int,
    skip: tuple[int, ...] = (),
    name: str = "Sam Student",
    email: str = "sam@example.com",
) -> Any:
    """A paid weekly series as bookings.series leaves it: one confirmed booking a week
    (weeks in `skip` left out), each on its own slot. The flow is tested in
    tests/bookings/test_series.py; this is for what shows it."""
    from bookings.models import Booking, BookingSeries, BookingStatus

    series = BookingSeries.objects.create(
        tutor=tutor,
        offering=offering,
        mode=offering.mode,
        student_name=name,
        student_email=email,
        weeks=weeks,
        first_start=first,
        timezone=tutor.timezone,
    )
    for week in range(1, weeks + 1):
        if week in skip:
            continue
        start = series.week_start(week)
        Booking.objects.create(
            tutor=tutor,
            slot=make_slot(
                tutor,
                start,
                remote=offering if offering.mode == Mode.REMOTE else None,
                in_person=offering if offering.mode == Mode.IN_PERSON else None,
            ),
            offering=offering,
            mode=offering.mode,
            student_name=name,
            student_email=email,
            price_amount=offering.price_amount,
            currency=offering.currency,
            status=BookingStatus.CONFIRMED,
            confirmed_at=first - timedelta(days=1),
            series=series,
            series_week=week,
        )
    return series
