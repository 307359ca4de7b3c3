"""Input parsing shared by the API's serializers and query-string readers."""

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bookings.models import is_timezone


def parse_zone(value: str) -> zoneinfo.ZoneInfo:
    if not is_timezone(value):
        raise serializers.ValidationError(f"{value[:64]!r} is not an IANA time zone.")
    return zoneinfo.ZoneInfo(value)


def parse_aware(value: str) -> datetime:
    """An ISO 8601 datetime with an offset. Naive times are ambiguous and refused."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise serializers.ValidationError("Use an ISO 8601 datetime, e.g. 2026-12-01T18:00:00Z.")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise serializers.ValidationError(
            "Give the time zone offset (e.g. 18:00:00-05:00 or 23:00:00Z)."
        )
    return parsed.astimezone(UTC)


def parse_bound(value: str, zone: zoneinfo.ZoneInfo, *, end: bool) -> datetime:
    """A range bound: a datetime with offset, or a date read as a day in `zone`.

    A date as `start` means that day's local midnight; as `end` it includes that whole
    day (next local midnight), so start=2026-12-01&end=2026-12-07 covers seven days.
    """
    if "T" not in value and " " not in value:
        try:
            day: date | None = parse_date(value)
        except ValueError:
            day = None
        if day is None:
            raise serializers.ValidationError("Use a date (YYYY-MM-DD) or an ISO 8601 datetime.")
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    return parse_aware(value)


class AwareDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField silently assumes UTC for naive input; we refuse it instead."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise serializers.ValidationError("Give the time zone offset.")
            return value.astimezone(UTC)
        if not isinstance(value, str):
            raise serializers.ValidationError("Use an ISO 8601 datetime string.")
        return parse_aware(value)


@extend_schema_field(
    {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "example": "18:00"}
)
class WallClockTimeField(serializers.TimeField):
    """A local time of day with no zone (weekly rules), rendered as HH:MM.

    Documented as a pattern, not as JSON Schema's "time" format, which means an
    RFC 3339 time with an offset: these times are deliberately zone-less.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)


class TimeZoneField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            parse_zone(value)
        return value
