"""What the edges (API serializers, web forms, the admin) accept, in one place.

Free text is normalised (Unicode NFC, surrounding whitespace stripped) and refused when
it carries characters that would break an email header, a calendar file or a page, or
disguise what a person reads: control characters, lone surrogates, line and paragraph
separators in one-line fields, and the bidirectional overrides used to make text read
backwards ("Trojan Source"). Dates and times are kept inside a window the code can do
arithmetic in: Python's datetime stops at year 9999, so "9999-12-31" plus a day, or
"0001-01-01" in a zone ahead of UTC, would otherwise fail deep inside a view.

Django ValidationErrors are raised; DRF turns them into field errors like its own.
This module imports nothing of ours, so models, serializers and forms can all use it.
"""

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

# --- free text -----------------------------------------------------------------------------

NAME_MAX_LENGTH = 120  # people's names, offering titles, place names
EMAIL_MAX_LENGTH = 254  # RFC 5321's limit on a forward path
REASON_MAX_LENGTH = 200  # block notes, cancellation reasons
HEADLINE_MAX_LENGTH = 200
ADDRESS_MAX_LENGTH = 255
NOTES_MAX_LENGTH = 2000  # a student's note, an offering's description
BIO_MAX_LENGTH = 5000

# Model fields that hold a name people read (checked with check_name), and the bounds of
# model text fields that have no max_length of their own: the serializers and forms that
# build fields from the models look them up here.
NAME_FIELDS = frozenset({"display_name", "title", "place_name", "student_name"})
TEXT_MAX_LENGTHS = {
    "bio": BIO_MAX_LENGTH,
    "description": NOTES_MAX_LENGTH,
    "notes": NOTES_MAX_LENGTH,
}

# Bidirectional embeddings, overrides and isolates (Unicode category Cf).
_BIDI = "\u202a-\u202e\u2066-\u2069"
# Every control character (Cc), lone surrogates (Cs, which no UTF-8 encoder accepts),
# the line and paragraph separators, and the bidi controls.
_ONE_LINE_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029{_BIDI}]")
# The same, except newline and tab; other line breaks become \n before the check.
_MULTILINE_FORBIDDEN = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")


def normalise_text(value: str, *, multiline: bool = False) -> str:
    """NFC, line breaks as \\n (multi-line text), no surrounding whitespace."""
    value = unicodedata.normalize("NFC", value)
    if multiline:
        value = _LINE_BREAKS.sub("\n", value)
    return value.strip()


def check_text(value: str, *, multiline: bool = False) -> None:
    """Refuse characters that have no place in what people type (see the module doc)."""
    pattern = _MULTILINE_FORBIDDEN if multiline else _ONE_LINE_FORBIDDEN
    found = pattern.search(value)
    if found is None:
        return
    char = found.group()
    if char in "\n\r\x85\u2028\u2029":
        message = "Keep this on one line."
    elif "\ud800" <= char <= "\udfff":
        message = "This text is not valid Unicode."
    else:
        message = f"Remove the invisible control character U+{ord(char):04X}."
    raise ValidationError(message, code="control_character")


def check_name(value: str) -> None:
    """A name someone will read: one line, and something visible in it."""
    check_text(value)
    if value and not any(unicodedata.category(c)[0] in "LNPS" for c in value):
        raise ValidationError("Enter a name people can read.", code="invisible")


# --- dates and times ----------------------------------------------------------------------

# Nothing this service stores or looks up lies before this.
EARLIEST_DATE = date(2000, 1, 1)
EARLIEST = datetime.combine(EARLIEST_DATE, time(), UTC)
# How far ahead a date may be anywhere (queries, a weekly rule's validity).
MAX_DAYS_AHEAD = 5 * 365
# How far ahead a tutor may add a one-off slot or block time off: a year of planning.
PLAN_DAYS_AHEAD = 365


def check_date(value: date, *, days_ahead: int = MAX_DAYS_AHEAD, today: date | None = None) -> None:
    latest = (today or timezone.now().date()) + timedelta(days=days_ahead)
    if value < EARLIEST_DATE:
        raise ValidationError(
            f"Use a date from {EARLIEST_DATE.isoformat()} on.", code="date_out_of_range"
        )
    if value > latest:
        raise ValidationError(
            f"That is too far ahead: use a date up to {latest.isoformat()}.",
            code="date_out_of_range",
        )


def check_moment(
    value: datetime, *, days_ahead: int = MAX_DAYS_AHEAD, now: datetime | None = None
) -> None:
    """`value` is aware; it must lie between 2000 and `days_ahead` days from now."""
    latest = (now or timezone.now()) + timedelta(days=days_ahead)
    if value < EARLIEST:
        raise ValidationError(
            f"Use a time from {EARLIEST_DATE.isoformat()} on.", code="date_out_of_range"
        )
    if value > latest:
        raise ValidationError(
            f"That is too far ahead: use a time up to {latest.date().isoformat()}.",
            code="date_out_of_range",
        )


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; years 1 and 9999 with an offset cannot be converted."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"Use a time from {EARLIEST_DATE.isoformat()} on, and not too far ahead.",
            code="date_out_of_range",
        ) from None


class DateWithin:
    """A validator for date fields: check_date() with this field's horizon."""

    def __init__(self, days_ahead: int = MAX_DAYS_AHEAD) -> None:
        self.days_ahead = days_ahead

    def __call__(self, value: date) -> None:
        check_date(value, days_ahead=self.days_ahead)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateWithin) and other.days_ahead == self.days_ahead

    def __hash__(self) -> int:
        return hash(self.days_ahead)


# --- numbers a tutor sets -----------------------------------------------------------------

# Each with a reason a tutor would recognise; the models' validators and database
# constraints use the same numbers, so neither the API, a form nor the admin can store more.
MAX_NOTICE_MINUTES = 30 * 24 * 60  # 30 days: longer notice means nobody can book at all
MAX_TRAVEL_BUFFER_MINUTES = 24 * 60  # a day
MAX_FULL_REFUND_HOURS = 30 * 24  # 30 days
MIN_DURATION_MINUTES = 15
MAX_DURATION_MINUTES = 12 * 60  # the longest session that fits in a day's window
MIN_PRICE_AMOUNT = 50  # Stripe's smallest charge, in minor units
MAX_PRICE_AMOUNT = 99_999_999  # Stripe's largest (eight digits), in minor units
