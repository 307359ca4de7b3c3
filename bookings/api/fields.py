"""Input parsing shared by the API's serializers and query-string readers.

Every value from outside is bounded here (see bookings/validation.py for the rules):
free text through TextField / NameField, dates and times inside the window the code
can compute in, request bodies through a JSON parser that answers 400, never 500.
"""

import json
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError

from bookings import validation
from bookings.models import is_timezone


def _drf(check: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run a bookings.validation check, raising DRF's ValidationError."""
    try:
        check(*args, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


def parse_zone(value: str) -> zoneinfo.ZoneInfo:
    if not is_timezone(value):
        raise serializers.ValidationError(f"{value[:64]!r} is not an IANA time zone.")
    return zoneinfo.ZoneInfo(value)


def parse_aware(value: str, *, days_ahead: int = validation.MAX_DAYS_AHEAD) -> datetime:
    """An ISO 8601 datetime with an offset, in UTC, between 2000 and `days_ahead` days
    from now. Naive times are ambiguous and refused."""
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
    return _within(parsed, days_ahead=days_ahead)


def _within(value: datetime, *, days_ahead: int) -> datetime:
    try:
        moment = validation.to_utc(value)
        validation.check_moment(moment, days_ahead=days_ahead)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None
    return moment


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
        _drf(validation.check_date, day)
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    return parse_aware(value)


class AwareDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField silently assumes UTC for naive input; we refuse it instead.

    Bounded: from 2000 to `days_ahead` days from now (five years unless told).
    """

    def __init__(self, *, days_ahead: int = validation.MAX_DAYS_AHEAD, **kwargs: Any) -> None:
        self.days_ahead = days_ahead
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise serializers.ValidationError("Give the time zone offset.")
            return _within(value, days_ahead=self.days_ahead)
        if not isinstance(value, str):
            raise serializers.ValidationError("Use an ISO 8601 datetime string.")
        return parse_aware(value, days_ahead=self.days_ahead)


class BoundedDateField(serializers.DateField):
    """A calendar date from 2000 to `days_ahead` days from today."""

    def __init__(self, *, days_ahead: int = validation.MAX_DAYS_AHEAD, **kwargs: Any) -> None:
        self.days_ahead = days_ahead
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        day: date = super().to_internal_value(value)
        _drf(validation.check_date, day, days_ahead=self.days_ahead)
        return day


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


class StudentTimeZoneField(TimeZoneField):
    """The student's IANA zone, for the times shown to them: optional, blank by default."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("default", "")
        super().__init__(**kwargs)


# --- free text -------------------------------------------------------------------------------


class TextField(serializers.CharField):
    """Free text: NFC, trimmed, no control characters (newlines and tabs only when
    `multiline`), bounded by max_length (counted after normalising)."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = validation.normalise_text(super().to_internal_value(data), multiline=self.multiline)
        self.check(value)
        return value

    def check(self, value: str) -> None:
        _drf(validation.check_text, value, multiline=self.multiline)


class MultilineTextField(TextField):
    """For model TextFields (notes, bio, description) in ModelSerializers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiline=True, **kwargs)


class NotesField(MultilineTextField):
    """The student's optional note to the tutor: at most NOTES_MAX_LENGTH, blank by
    default."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", validation.NOTES_MAX_LENGTH)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("default", "")
        super().__init__(**kwargs)


class NameField(TextField):
    """A person's or a thing's name: one line, at most 120 characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", validation.NAME_MAX_LENGTH)
        super().__init__(**kwargs)

    def check(self, value: str) -> None:
        _drf(validation.check_name, value)


class EmailAddressField(serializers.EmailField):
    """An email address without control characters (a quoted local part may hold them,
    and Django's validator lets them through)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", validation.EMAIL_MAX_LENGTH)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = validation.normalise_text(super().to_internal_value(data))
        _drf(validation.check_text, value)
        return value


class LinkField(serializers.URLField):
    """A URL without control characters (Django's validator allows some in the path)."""

    def to_internal_value(self, data: Any) -> str:
        value = validation.normalise_text(super().to_internal_value(data))
        _drf(validation.check_text, value)
        return value


class EdgeModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose text, email and URL fields go through the checks above,
    so a model field added later is validated without anyone remembering to. Names
    (validation.NAME_FIELDS) are NameFields; long text is bounded even where the model
    leaves it open (validation.TEXT_MAX_LENGTHS)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
        models.TextField: MultilineTextField,
        models.EmailField: EmailAddressField,
        models.URLField: LinkField,
    }

    def build_standard_field(
        self, field_name: str, model_field: models.Field
    ) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if field_class is TextField and field_name in validation.NAME_FIELDS:
            field_class = NameField
        if field_class is MultilineTextField and "max_length" not in kwargs:
            kwargs["max_length"] = validation.TEXT_MAX_LENGTHS.get(field_name)
        return field_class, kwargs


# --- request bodies --------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (malformed_request) where it would fail with a 500:
    nesting deep enough to exhaust the recursion limit, and strings holding lone
    surrogates (escaped as \\ud800 in valid JSON, but not Unicode any database stores)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            json.dumps(data, ensure_ascii=False).encode()
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a string is not valid Unicode.") from None
        return data
