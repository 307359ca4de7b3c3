"""Packages: a tutor's "5 sessions for $400.00", bought and paid, and open slots to book."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from bookings.models import Offering, Slot, Tutor
from packages import services
from packages.models import Package, Purchase
from payments import services as payment_services
from tests.conftest import make_slot
from tests.payments.conftest import fake_stripe, stripe  # noqa: F401 - fixtures


@pytest.fixture
def package(tutor: Tutor, remote: Offering) -> Package:
    return services.package_create(
        tutor=tutor, offering=remote, sessions=5, price_amount=40000, valid_days=183
    )


def buy(package: Package, now: datetime, *, email: str = "sam@example.com") -> Purchase:
    """Bought and paid through the simulated checkout (no Stripe key in tests)."""
    start = services.purchase_start(
        package_id=package.pk, student_name="Sam Student", student_email=email, now=now
    )
    payment_services.simulated_pay(payment=start.purchase.payment, now=now)
    start.purchase.refresh_from_db()
    return start.purchase


@pytest.fixture
def bought(package: Package, now: datetime) -> Purchase:
    return buy(package, now)


def remote_slots(
    tutor: Tutor, remote: Offering, now: datetime, n: int = 3, **kw: Any
) -> list[Slot]:
    """`n` remote slots, a day apart from two days ahead (past notice and refund line)."""
    return [make_slot(tutor, now + timedelta(days=2 + i), remote=remote, **kw) for i in range(n)]


@pytest.fixture
def slots(tutor: Tutor, remote: Offering, now: datetime) -> list[Slot]:
    return remote_slots(tutor, remote, now)


@pytest.fixture(autouse=True)
def on_commit_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests run inside one transaction that never commits: the link email's
    on_commit hook runs at once instead (as after a commit)."""
    from packages import notifications

    monkeypatch.setattr(
        notifications.transaction, "on_commit", lambda fn, using=None, robust=False: fn()
    )
