"""How the pages format money and preview a weekly rule."""

from datetime import UTC, datetime, time, timedelta

import pytest

from bookings import services
from bookings.web.presenters import money, rule_preview, zone_or

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (9000, "usd", "$90.00"),
        (9050, "usd", "$90.50"),
        (123456, "eur", "€1,234.56"),
        (1500, "jpy", "¥1,500"),
        (2500, "chf", "25.00 CHF"),
        (0, "usd", "$0.00"),
    ],
)
def test_money_reads_like_a_price_tag(amount, currency, shown):
    assert money(amount, currency) == shown


def test_an_unknown_zone_falls_back():
    assert zone_or("Asia/Tokyo", "UTC") == "Asia/Tokyo"
    assert zone_or("Asia/Nowhere", "UTC") == "UTC"
    assert zone_or("", "America/New_York") == "America/New_York"


def test_a_rule_preview_skips_blocked_days_and_writes_nothing(tutor, remote, now):
    services.block_create(
        tutor=tutor,
        start=datetime(2026, 12, 3, 5, tzinfo=UTC),
        end=datetime(2026, 12, 4, 5, tzinfo=UTC),
        now=now,
    )
    preview = rule_preview(
        tutor=tutor,
        now=now,
        weekdays=[4],
        start_time=time(18),
        end_time=time(20),
        duration=timedelta(minutes=60),
    )
    assert preview.created == 2  # Thursday the 10th
    assert preview.skipped == 2  # Thursday the 3rd is blocked
    assert [d.day.day for d in preview.days] == [3, 10]
    assert {s.note for s in preview.days[0].slots} == {"blocked"}
    assert not tutor.slots.exists()


def test_a_rule_preview_respects_its_valid_dates(tutor, now):
    preview = rule_preview(
        tutor=tutor,
        now=now,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start_time=time(9),
        end_time=time(10),
        duration=timedelta(minutes=60),
        valid_from=datetime(2026, 12, 10).date(),
        valid_until=datetime(2026, 12, 11).date(),
    )
    assert [d.day.day for d in preview.days] == [10, 11]
