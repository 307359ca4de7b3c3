"""Fixtures for requested times: a student's request to Ada, and emails as they go."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from bookings import time_requests
from bookings.models import Offering, TimeRequest, Tutor
from tests.payments.conftest import fake_stripe, stripe  # noqa: F401 (fixtures)


def times_from(now: datetime, *days: float, hour: int = 23) -> list[datetime]:
    """Whole-hour starts `days` ahead (23:00 UTC: 18:00 in New York in winter)."""
    base = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return [base + timedelta(days=d) for d in days]


def iso(moments: list[datetime]) -> list[str]:
    return [m.isoformat() for m in moments]


class Outbox:
    """The emails sent so far; `with emails():` runs what commits queue in the block
    (the outbox's delivery tasks, eager in tests)."""

    def __init__(self, capture: Any) -> None:
        self._capture = capture

    def __call__(self) -> Any:
        return self._capture(execute=True)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(mail.outbox))

    def __getitem__(self, i: int) -> Any:
        return mail.outbox[i]

    def __len__(self) -> int:
        return len(mail.outbox)


@pytest.fixture
def emails(django_capture_on_commit_callbacks: Any) -> Outbox:
    mail.outbox.clear()
    return Outbox(django_capture_on_commit_callbacks)


@pytest.fixture
def make_request(tutor: Tutor, remote: Offering, now: datetime) -> Callable[..., TimeRequest]:
    def make(*days: float, email: str = "sam@example.com", **extra: Any) -> TimeRequest:
        return time_requests.time_request_create(
            tutor=extra.pop("tutor", tutor),
            offering_id=extra.pop("offering_id", remote.pk),
            times=times_from(now, *(days or (2, 3))),
            student_name="Sam Student",
            student_email=email,
            note=extra.pop("note", "Pandas, please"),
            student_timezone=extra.pop("student_timezone", "Europe/Berlin"),
            now=extra.pop("at", now),
            **extra,
        )

    return make


def student_api() -> APIClient:
    return APIClient()
