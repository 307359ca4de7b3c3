"""Tutors, what they offer, when they are available, and the bookings students make.

Invariants the database itself enforces (see the constraints below and migration 0002):
- one tutor's active slots never overlap (PostgreSQL: exclusion constraint over
  tstzrange; SQLite: triggers);
- a slot has at most one active (held or confirmed) booking (partial unique index);
- money is a non-negative integer in the currency's minor unit.
"""

import secrets
import uuid
import zoneinfo
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from . import tokens, validation


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_timezone(value: str) -> bool:
    return value in _zones()


def validate_timezone(value: str) -> None:
    if not is_timezone(value):
        raise ValidationError(f"{value!r} is not an IANA time zone.", code="invalid_timezone")


def new_token() -> str:
    """The random link tokens made before signed links; only migration 0001 names it."""
    return secrets.token_urlsafe(32)


def new_calendar_uid() -> str:
    """A booking's iCalendar UID (RFC 5545 §3.8.4.7): random and stored, so it neither
    depends on the site's address nor repeats after a database reset (CALENDAR_UID_DOMAIN
    only names who made it)."""
    return f"{uuid.uuid4()}@{settings.CALENDAR_UID_DOMAIN}"


def new_message_id() -> str:
    """An email's Message-ID (RFC 5322 §3.6.4), without its angle brackets: random and
    stored on the outbox row, so a resend of the row carries the same one."""
    return f"{uuid.uuid4()}@{settings.CALENDAR_UID_DOMAIN}"


currency_validator = RegexValidator(r"^[a-z]{3}$", "Use a lower-case ISO 4217 code, e.g. usd.")


class Mode(models.TextChoices):
    REMOTE = "remote", "Remote (video)"
    IN_PERSON = "in_person", "In person (NYC)"


# The most sessions one weekly series can hold (a tutor's own cap may be lower).
MAX_SERIES_WEEKS = 52


class Tutor(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tutor"
    )
    slug = models.SlugField(unique=True)
    display_name = models.CharField(max_length=120)
    headline = models.CharField(max_length=200, blank=True)
    bio = models.TextField(blank=True)
    email = models.EmailField(help_text="Where booking notifications go.")
    timezone = models.CharField(
        max_length=64,
        default="America/New_York",
        validators=[validate_timezone],
        help_text="IANA zone the weekly rules are written in.",
    )
    currency = models.CharField(max_length=3, default="usd", validators=[currency_validator])
    # The key of the tutor's private calendar feed URL, which carries it signed
    # (bookings.tokens); rotating it kills the old URL.
    feed_key = models.CharField(max_length=32, unique=True, default=tokens.new_key, editable=False)
    # Only for feeds created before signed links: the SHA-256 of their old token (NULL,
    # not "", for the others: the column is unique).
    feed_legacy_digest = models.CharField(  # noqa: DJ001
        max_length=64, unique=True, null=True, editable=False
    )
    min_notice_minutes = models.PositiveIntegerField(
        default=12 * 60,
        validators=[MaxValueValidator(validation.MAX_NOTICE_MINUTES)],
        help_text="Nobody can book a slot that starts sooner than this. At most 30 days "
        "(43200 minutes).",
    )
    travel_buffer_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(validation.MAX_TRAVEL_BUFFER_MINUTES)],
        help_text="A booked in-person session hides slots starting or ending this close to it. "
        "At most a day (1440 minutes).",
    )
    full_refund_hours = models.PositiveIntegerField(
        default=24,
        validators=[MaxValueValidator(validation.MAX_FULL_REFUND_HOURS)],
        help_text="Students who cancel at least this long before the start get a full refund. "
        "At most 30 days (720 hours).",
    )
    max_series_weeks = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(2), MaxValueValidator(MAX_SERIES_WEEKS)],
        help_text="The most weeks a student can book as one weekly series (2 to 52; the "
        "availability horizon may allow fewer).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Raised by database triggers (migration 0009), never by the app, whenever anything
    # that changes what a student can book with this tutor changes: the tutor's row, their
    # slots, bookings, blocked periods and offerings. The slot lists' ETags carry it
    # (bookings/conditional.py). The triggers also keep it from going backwards when a
    # save() writes back a stale in-memory value.
    availability_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["display_name"]
        # The same bounds as the validators, for rows written around them: larger values
        # overflow the date arithmetic every slot list does with them.
        constraints = [
            models.CheckConstraint(
                name="tutor_min_notice_bounded",
                condition=Q(min_notice_minutes__lte=validation.MAX_NOTICE_MINUTES),
                violation_error_message="The minimum notice can be at most 30 days.",
            ),
            models.CheckConstraint(
                name="tutor_travel_buffer_bounded",
                condition=Q(travel_buffer_minutes__lte=validation.MAX_TRAVEL_BUFFER_MINUTES),
                violation_error_message="The travel buffer can be at most a day.",
            ),
            models.CheckConstraint(
                name="tutor_full_refund_window_bounded",
                condition=Q(full_refund_hours__lte=validation.MAX_FULL_REFUND_HOURS),
                violation_error_message="The full-refund window can be at most 30 days.",
            ),
            models.CheckConstraint(
                name="tutor_max_series_weeks_bounded",
                condition=Q(max_series_weeks__gte=2) & Q(max_series_weeks__lte=MAX_SERIES_WEEKS),
                violation_error_message="A series cap is from 2 to 52 weeks.",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def min_notice(self) -> timedelta:
        return timedelta(minutes=self.min_notice_minutes)

    @property
    def travel_buffer(self) -> timedelta:
        return timedelta(minutes=self.travel_buffer_minutes)

    @property
    def feed_token(self) -> str:
        return tokens.token_for("feed", self.feed_key)

    @property
    def feed_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}/calendar/{self.feed_token}.ics"

    @property
    def feed_webcal_url(self) -> str:
        """The same feed for calendar apps' subscribe handlers."""
        return "webcal://" + self.feed_url.split("://", 1)[1]


class Offering(models.Model):
    """A kind of session a tutor sells: a mode, a length and a price."""

    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="offerings")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveIntegerField(
        validators=[
            MinValueValidator(validation.MIN_DURATION_MINUTES),
            MaxValueValidator(validation.MAX_DURATION_MINUTES),
        ],
        help_text="From 15 minutes to 12 hours (720 minutes).",
    )
    price_amount = models.PositiveIntegerField(
        # Stripe Checkout refuses charges below about 0.50 (USD) / 50 (JPY), and above
        # eight digits in any currency.
        validators=[
            MinValueValidator(
                validation.MIN_PRICE_AMOUNT, "Stripe's smallest charge is 50 minor units."
            ),
            MaxValueValidator(
                validation.MAX_PRICE_AMOUNT, "Stripe's largest charge is 99,999,999 minor units."
            ),
        ],
        help_text="In the currency's minor unit (cents); from 50 to 99,999,999.",
    )
    currency = models.CharField(max_length=3, default="usd", validators=[currency_validator])
    video_url = models.URLField(blank=True, help_text="Remote sessions: the video call link.")
    place_name = models.CharField(max_length=120, blank=True, help_text="In person: where.")
    place_address = models.CharField(max_length=255, blank=True, help_text="In person: address.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tutor", "mode", "duration_minutes"]
        constraints = [
            models.CheckConstraint(
                name="offering_duration_at_least_15_min", condition=Q(duration_minutes__gte=15)
            ),
            models.CheckConstraint(
                name="offering_duration_at_most_12_h",
                condition=Q(duration_minutes__lte=validation.MAX_DURATION_MINUTES),
                violation_error_message="A session can last at most 12 hours.",
            ),
            models.CheckConstraint(
                name="offering_price_bounded",
                condition=Q(price_amount__gte=validation.MIN_PRICE_AMOUNT)
                & Q(price_amount__lte=validation.MAX_PRICE_AMOUNT),
                violation_error_message="The price must be from 50 to 99,999,999 minor units.",
            ),
            models.CheckConstraint(
                name="offering_remote_has_video_link",
                condition=~Q(mode=Mode.REMOTE) | ~Q(video_url=""),
                violation_error_message="Remote sessions need a video call link.",
            ),
            models.CheckConstraint(
                name="offering_in_person_has_place",
                condition=~Q(mode=Mode.IN_PERSON) | (~Q(place_name="") & ~Q(place_address="")),
                violation_error_message="In-person sessions need a meeting place.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_mode_display()}, {self.duration_minutes} min)"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def place(self) -> dict[str, str] | None:
        if self.mode != Mode.IN_PERSON:
            return None
        return {"name": self.place_name, "address": self.place_address}


class AvailabilityRule(models.Model):
    """'Tue and Thu 18:00–21:00 in my zone, 60-minute remote or in-person slots'."""

    tutor = models.ForeignKey(Tutor, on_delete=models.CASCADE, related_name="rules")
    # ISO weekdays, Monday=1 … Sunday=7, e.g. [2, 4].
    weekdays = models.JSONField(default=list)
    start_time = models.TimeField(help_text="Local wall-clock time in the tutor's zone.")
    end_time = models.TimeField(help_text="Local wall-clock time; after the start, same day.")
    offerings = models.ManyToManyField(Offering, related_name="rules")
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tutor", "start_time"]
        constraints = [
            models.CheckConstraint(
                name="rule_ends_after_start", condition=Q(end_time__gt=models.F("start_time"))
            ),
            models.CheckConstraint(
                name="rule_valid_range_ordered",
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=models.F("valid_from")),
            ),
        ]

    def __str__(self) -> str:
        days = ",".join(str(d) for d in self.weekdays)
        return f"{self.tutor} days {days} {self.start_time:%H:%M}-{self.end_time:%H:%M}"


class BlockedPeriod(models.Model):
    """Time off: no slot is offered inside it (booked sessions are left for the tutor)."""

    tutor = models.ForeignKey(Tutor, on_delete=models.CASCADE, related_name="blocked_periods")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["tutor", "end"])]
        constraints = [
            models.CheckConstraint(
                name="blocked_period_ends_after_start", condition=Q(end__gt=models.F("start"))
            )
        ]

    def __str__(self) -> str:
        return f"{self.tutor} blocked {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M} UTC"


class SlotSource(models.TextChoices):
    RULE = "rule", "Weekly rule"
    ONE_OFF = "one_off", "One-off"
    # Made for one student's time request (TimeRequest.slot): listed nowhere public,
    # held only through the request's private link (bookings/time_requests.py).
    PRIVATE = "private", "Private (a requested time)"


class SlotRemoval(models.TextChoices):
    # Deleted by the tutor: stays gone even if a rule covers the time.
    DELETED = "deleted", "Deleted by the tutor"
    # No rule covers it any more, or a blocked period does: back if coverage returns.
    UNCOVERED = "uncovered", "No longer covered by a rule"
    BLOCKED = "blocked", "Inside a blocked period"


class Slot(models.Model):
    """A concrete, bookable stretch of a tutor's time, stored in UTC.

    Slots are never deleted: a withdrawn slot keeps its row (removed_at) so the
    bookings that once used it keep their history.
    """

    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="slots")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source = models.CharField(max_length=16, choices=SlotSource.choices)
    rule = models.ForeignKey(
        AvailabilityRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="slots"
    )
    remote_offering = models.ForeignKey(
        Offering, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    in_person_offering = models.ForeignKey(
        Offering, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_reason = models.CharField(
        max_length=16, choices=SlotRemoval.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        indexes = [
            # The public slot list: one tutor's active slots in a time range.
            models.Index(
                fields=["tutor", "start"],
                name="slot_active_by_start",
                condition=Q(removed_at__isnull=True),
            ),
            models.Index(fields=["start"], name="slot_start"),
        ]
        constraints = [
            models.CheckConstraint(
                name="slot_ends_after_start", condition=Q(end__gt=models.F("start"))
            ),
            models.CheckConstraint(
                name="slot_offers_a_mode",
                condition=Q(remote_offering__isnull=False) | Q(in_person_offering__isnull=False),
            ),
            models.CheckConstraint(
                name="slot_removal_has_reason",
                condition=(Q(removed_at__isnull=True) & Q(removed_reason=""))
                | (Q(removed_at__isnull=False) & ~Q(removed_reason="")),
            ),
            # No overlap: see migration 0002 (exclusion constraint / SQLite triggers).
        ]

    def __str__(self) -> str:
        return f"{self.tutor} {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"

    @property
    def is_active(self) -> bool:
        return self.removed_at is None

    def offering_for(self, mode: str) -> Offering | None:
        if mode == Mode.REMOTE:
            return self.remote_offering
        if mode == Mode.IN_PERSON:
            return self.in_person_offering
        return None

    def offerings(self) -> dict[str, Offering]:
        """The active offerings bookable in this slot, by mode."""
        found = {
            Mode.REMOTE.value: self.remote_offering,
            Mode.IN_PERSON.value: self.in_person_offering,
        }
        return {mode: o for mode, o in found.items() if o is not None and o.is_active}


class BookingStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Held, awaiting payment"
    CONFIRMED = "confirmed", "Confirmed"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "No-show"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Hold expired"


ACTIVE_STATUSES = (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED)

# Every allowed move; anything else is refused. States only move forward, but for the
# tutor's undo of an outcome.
TRANSITIONS: dict[str, set[str]] = {
    BookingStatus.PENDING_PAYMENT: {
        BookingStatus.CONFIRMED,
        BookingStatus.CANCELLED,
        BookingStatus.EXPIRED,
    },
    BookingStatus.CONFIRMED: {
        BookingStatus.COMPLETED,
        BookingStatus.NO_SHOW,
        BookingStatus.CANCELLED,
    },
    # A payment that arrives after its hold expired may still confirm (late money).
    BookingStatus.EXPIRED: {BookingStatus.CONFIRMED},
    # The tutor may take back an outcome they marked by mistake (booking_outcome_undo).
    BookingStatus.COMPLETED: {BookingStatus.CONFIRMED},
    BookingStatus.NO_SHOW: {BookingStatus.CONFIRMED},
    BookingStatus.CANCELLED: set(),
}


class BookingSeries(models.Model):
    """A weekly series: the same wall-clock time in the tutor's zone, week after week,
    held all or nothing, paid with one checkout and invited as one recurring event.

    Each week is a Booking (series, series_week) with its own slot, status and refund;
    the series keeps what they share: who, what, the wall clock (`local_start` in
    `timezone`, the recurrence the invite's RRULE names), the student's link and the
    invite's UID and SEQUENCE.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="series")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="series")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    student_name = models.CharField(max_length=120)
    student_email = models.EmailField()
    student_timezone = models.CharField(
        max_length=64, blank=True, default="", validators=[validate_timezone]
    )
    # Weeks asked for, counted from the first: skipped and conflicting weeks included
    # (the invite's RRULE COUNT; EXDATE takes out the weeks not held).
    weeks = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(2), MaxValueValidator(MAX_SERIES_WEEKS)]
    )
    # The first session's start; its wall-clock time in `timezone` (the tutor's zone
    # when held) is what repeats each week.
    first_start = models.DateTimeField()
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    manage_key = models.CharField(
        max_length=32, unique=True, default=tokens.new_key, editable=False
    )
    calendar_uid = models.CharField(
        max_length=255, unique=True, default=new_calendar_uid, editable=False
    )
    # The series invite's SEQUENCE: raised when any of its sessions changes.
    sequence = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "booking series"
        constraints = [
            models.CheckConstraint(
                name="series_weeks_bounded",
                condition=Q(weeks__gte=2) & Q(weeks__lte=MAX_SERIES_WEEKS),
                violation_error_message="A series has from 2 to 52 weeks.",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.student_name} · {self.weeks} weeks from {self.first_start:%Y-%m-%d %H:%M} UTC"
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def week_start(self, week: int) -> datetime:
        """Week `week`'s start as the recurrence names it (1 = the first): the first
        session's wall-clock time that many weeks on, in the series' zone, aware."""
        local = self.first_start.astimezone(self.zone).replace(tzinfo=None)
        return (local + timedelta(weeks=week - 1)).replace(tzinfo=self.zone)

    @property
    def manage_token(self) -> str:
        return tokens.token_for("series", self.manage_key)

    @property
    def api_path(self) -> str:
        return f"/api/series/{self.manage_token}/"


class Booking(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="bookings")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="bookings")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="bookings")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    student_name = models.CharField(max_length=120)
    # Stored lower-cased so the per-email hold limit cannot be dodged by case.
    student_email = models.EmailField()
    student_timezone = models.CharField(
        max_length=64, blank=True, default="", validators=[validate_timezone]
    )
    notes = models.TextField(blank=True, max_length=2000)
    # Snapshot of the price at the time of the hold: later price edits never change it.
    price_amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, validators=[currency_validator])
    status = models.CharField(
        max_length=20, choices=BookingStatus.choices, default=BookingStatus.PENDING_PAYMENT
    )
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # Who asked for the hold, as a keyed digest of their network address (never the
    # address itself): the limit on unpaid holds per client counts by it.
    client_digest = models.CharField(max_length=64, blank=True, default="", editable=False)
    # The web form's one-time key: the same submission sent twice (a double tap, Back
    # and resend) finds this booking instead of making a second hold.
    request_key = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    # The weekly series this session belongs to, and which week of it (1 = the first).
    series = models.ForeignKey(
        BookingSeries, null=True, blank=True, on_delete=models.PROTECT, related_name="bookings"
    )
    series_week = models.PositiveSmallIntegerField(null=True, blank=True)
    # What the cancellation policy gave back when the booking was cancelled (minor units).
    refund_amount = models.PositiveIntegerField(default=0)
    # The key of the student's manage link, which carries it signed (bookings.tokens).
    manage_key = models.CharField(
        max_length=32, unique=True, default=tokens.new_key, editable=False
    )
    # Only for bookings made before signed links: the SHA-256 of their old token (NULL,
    # not "", for the others: the column is unique).
    manage_legacy_digest = models.CharField(  # noqa: DJ001
        max_length=64, unique=True, null=True, editable=False
    )
    # RFC 5545 SEQUENCE of the invite: raised whenever the event changes.
    sequence = models.PositiveIntegerField(default=0)
    # The invite's UID, the same in every invite, update and cancellation of the booking
    # and in the tutor's feed (bookings.ics). Rows older than migration 0013 keep the
    # UID their invites were sent with.
    calendar_uid = models.CharField(
        max_length=255, unique=True, default=new_calendar_uid, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tutor", "status"], name="booking_tutor_status"),
            models.Index(
                fields=["hold_expires_at"],
                name="booking_pending_by_expiry",
                condition=Q(status=BookingStatus.PENDING_PAYMENT),
            ),
            # A hold counts the student's unexpired holds (sql.busy_around).
            models.Index(
                fields=["student_email", "hold_expires_at"],
                name="booking_pending_by_email",
                condition=Q(status=BookingStatus.PENDING_PAYMENT),
            ),
            # The per-client limit counts that client's unexpired holds.
            models.Index(
                fields=["client_digest", "hold_expires_at"],
                name="booking_pending_by_client",
                condition=Q(status=BookingStatus.PENDING_PAYMENT),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["slot"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="one_active_booking_per_slot",
            ),
            # A week of a series is booked once: a second hold for it would be a
            # second session at the same time.
            models.UniqueConstraint(
                fields=["series", "series_week"], name="one_booking_per_series_week"
            ),
            models.CheckConstraint(
                name="booking_series_has_week",
                condition=Q(series__isnull=True, series_week__isnull=True)
                | Q(series__isnull=False, series_week__gte=1),
            ),
            models.CheckConstraint(
                name="booking_pending_has_expiry",
                condition=~Q(status=BookingStatus.PENDING_PAYMENT)
                | Q(hold_expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_name} · {self.slot} · {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def start(self) -> datetime:
        return self.slot.start

    @property
    def end(self) -> datetime:
        return self.slot.end

    @property
    def manage_token(self) -> str:
        return tokens.token_for("manage", self.manage_key)

    @property
    def manage_path(self) -> str:
        return f"/bookings/{self.manage_token}/"

    @property
    def manage_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.manage_path


# How services accept a booking's primary key.
BookingId = uuid.UUID | str


class Actor(models.TextChoices):
    STUDENT = "student", "Student"
    TUTOR = "tutor", "Tutor"
    SYSTEM = "system", "System"
    PAYMENT = "payment", "Payment provider"


class BookingEvent(models.Model):
    """The log of every status change: who, when, why."""

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=20, choices=BookingStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=BookingStatus.choices)
    actor = models.CharField(max_length=16, choices=Actor.choices)
    reason = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.booking_id}: {self.from_status or '∅'} → {self.to_status} by {self.actor}"


class NotificationKind(models.TextChoices):
    CONFIRMED = "confirmed", "Booking confirmed"
    CANCELLED = "cancelled", "Booking cancelled"
    RESCHEDULED = "rescheduled", "Booking rescheduled"
    REMINDER = "reminder", "Reminder"
    HOLD_EXPIRED = "hold_expired", "Hold expired"
    LATE_PAYMENT_REFUNDED = "late_payment_refunded", "Late payment refunded"
    # Money that could not confirm the booking (not its own checkout, short, or in another
    # currency): recorded and refunded, student and tutor told.
    PAYMENT_REFUSED = "payment_refused", "Payment refused and refunded"
    # A busy time from the tutor's own calendar appeared over a confirmed session.
    BUSY_CONFLICT = "busy_conflict", "Busy time over a booking"
    # The tutor asks the student to move the session to another time themselves.
    PICK_ANOTHER_TIME = "pick_another_time", "Tutor asks to pick another time"


class Recipient(models.TextChoices):
    STUDENT = "student", "Student"
    TUTOR = "tutor", "Tutor"


class NotificationState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"
    VOID = "void", "Void (no longer owed)"


class Notification(models.Model):
    """The outbox: one row per email the service owes, created in the same transaction
    as the change that causes it, delivered by Celery.

    The unique (booking, kind, recipient, key) makes a second copy of one message
    impossible: `key` is the version of the booking it speaks about (its SEQUENCE, or
    for reminders the offset and the start time), so a reminder is owed once per start
    time and a reschedule owes new ones. A worker claims a row with a conditional
    update (pending → sending) before sending, so two workers never send it twice.
    """

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    recipient = models.CharField(max_length=16, choices=Recipient.choices)
    key = models.CharField(max_length=100)
    # What the message says, frozen when it became owed (times, sequence, refund...).
    context = models.JSONField(default=dict)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The email's Message-ID (without <>): a retry sends the same one, so mail systems
    # recognise a second copy; later emails about the booking refer to it (threading).
    message_id = models.CharField(
        max_length=255, unique=True, default=new_message_id, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            # The sweep: due rows that are still owed. A partial index stays small however
            # many sent rows pile up.
            models.Index(
                fields=["due_at"],
                name="notification_pending_due",
                condition=Q(state="pending"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="notification_sending",
                condition=Q(state="sending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["booking", "kind", "recipient", "key"], name="one_notification_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient} for {self.booking_id} ({self.state})"


class BusyInterval(models.Model):
    """A stretch of time the tutor is busy elsewhere, read from one of their own
    calendars: no slot overlapping it is open (availability.decide, reason tutor_busy).

    Written by the calendars app, which replaces a source's rows on each successful
    sync; read here without importing it (dependencies point calendars → bookings). So
    `source` is the id of the calendars.CalendarSource that reported the time, not a
    foreign key: the calendars app deletes a source's rows with the source.
    """

    tutor = models.ForeignKey(Tutor, on_delete=models.CASCADE, related_name="busy_intervals")
    source = models.PositiveBigIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["start"]
        indexes = [
            # The slot list, the hold and the calendars page: one tutor's busy times
            # that end after a moment, read by range on end, then start.
            models.Index(fields=["tutor", "end", "start"], name="busy_by_tutor_end_start"),
            # A sync replaces one source's rows.
            models.Index(fields=["source"], name="busy_by_source"),
        ]
        constraints = [
            models.CheckConstraint(
                name="busy_interval_ends_after_start", condition=Q(end__gt=models.F("start"))
            )
        ]

    def __str__(self) -> str:
        return f"{self.tutor} busy {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M} UTC"


# --- requested times (issue 14, bookings/time_requests.py) ----------------------------------

# The most times one request may propose.
MAX_REQUESTED_TIMES = 3


class TimeRequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the tutor"
    ACCEPTED = "accepted", "Accepted: private slot offered"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"


class TimeRequest(models.Model):
    """A student's "none of the listed times fit: could you do one of these?".

    Up to three proposed starts (UTC; the session lasts the offering's duration). The
    tutor accepts one, which makes a private one-off slot (`slot`, source PRIVATE) that
    only the link behind `offer_key` (bookings.tokens, purpose "offer") can hold, until
    `offer_expires_at`; or declines with a message. Pending requests whose times have
    all passed, and offers nobody held in time, expire (the beat sweep).
    """

    tutor = models.ForeignKey(Tutor, on_delete=models.PROTECT, related_name="time_requests")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="+")
    student_name = models.CharField(max_length=120)
    # Stored lower-cased: the per-email limit on pending requests counts by it.
    student_email = models.EmailField()
    student_timezone = models.CharField(
        max_length=64, blank=True, default="", validators=[validate_timezone]
    )
    note = models.TextField(blank=True, max_length=2000)
    time_1 = models.DateTimeField()
    time_2 = models.DateTimeField(null=True, blank=True)
    time_3 = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TimeRequestStatus.choices, default=TimeRequestStatus.PENDING
    )
    # Which proposed time the tutor accepted (1 to 3).
    accepted_choice = models.PositiveSmallIntegerField(null=True, blank=True)
    # The private slot an acceptance made: one request, one slot (unique).
    slot = models.OneToOneField(
        Slot, null=True, blank=True, on_delete=models.PROTECT, related_name="time_request"
    )
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    decline_message = models.TextField(blank=True, max_length=2000)
    # Who asked, as a keyed digest of their network address (services.client_digest).
    client_digest = models.CharField(max_length=64, blank=True, default="", editable=False)
    offer_key = models.CharField(max_length=32, unique=True, default=tokens.new_key, editable=False)
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tutor", "status"], name="timerequest_tutor_status"),
            models.Index(
                fields=["student_email"],
                name="timerequest_pending_by_email",
                condition=Q(status="pending"),
            ),
            models.Index(
                fields=["client_digest"],
                name="timerequest_pending_by_client",
                condition=Q(status="pending"),
            ),
        ]
        constraints = [
            # Accepted means exactly one chosen time, its private slot and an offer that
            # ends; nothing else carries a slot, a choice or an offer.
            models.CheckConstraint(
                name="timerequest_accepted_has_offer",
                condition=(
                    Q(status="accepted")
                    & Q(slot__isnull=False)
                    & Q(accepted_choice__gte=1)
                    & Q(accepted_choice__lte=MAX_REQUESTED_TIMES)
                    & Q(offer_expires_at__isnull=False)
                )
                | (~Q(status="accepted") & Q(accepted_choice__isnull=True))
                | Q(status="expired", slot__isnull=False, accepted_choice__isnull=False),
                violation_error_message="An accepted request names its time and private slot.",
            ),
            models.CheckConstraint(
                name="timerequest_pending_has_no_slot",
                condition=~Q(status__in=["pending", "declined"]) | Q(slot__isnull=True),
            ),
            models.CheckConstraint(
                name="timerequest_times_distinct",
                condition=(Q(time_2__isnull=True) | ~Q(time_2=models.F("time_1")))
                & (
                    Q(time_3__isnull=True)
                    | (~Q(time_3=models.F("time_1")) & ~Q(time_3=models.F("time_2")))
                ),
            ),
            models.CheckConstraint(
                name="timerequest_times_in_order",
                condition=Q(time_3__isnull=True) | Q(time_2__isnull=False),
                violation_error_message="Proposed times fill time_1, time_2, time_3 in order.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_name} asks {self.tutor} ({self.status})"

    @property
    def times(self) -> list[datetime]:
        return [t for t in (self.time_1, self.time_2, self.time_3) if t is not None]

    @property
    def accepted_time(self) -> datetime | None:
        if self.accepted_choice is None:
            return None
        return self.times[self.accepted_choice - 1]

    @property
    def offer_token(self) -> str:
        return tokens.token_for("offer", self.offer_key)

    @property
    def offer_path(self) -> str:
        return f"/offer/{self.offer_token}/"

    @property
    def offer_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.offer_path


class TimeRequestEmailKind(models.TextChoices):
    RECEIVED = "received", "New request (to the tutor)"
    OFFERED = "offered", "Time offered (private link)"
    DECLINED = "declined", "Request declined"


class TimeRequestEmail(models.Model):
    """The outbox of the request emails: like Notification (claimed pending → sending,
    retried with backoff), for messages about a request rather than a booking. One per
    request and kind (unique), so answering twice never emails twice."""

    request = models.ForeignKey(TimeRequest, on_delete=models.PROTECT, related_name="emails")
    kind = models.CharField(max_length=16, choices=TimeRequestEmailKind.choices)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(
        max_length=255, unique=True, default=new_message_id, editable=False
    )

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(
                fields=["due_at"], name="timerequestemail_pending", condition=Q(state="pending")
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["request", "kind"], name="one_email_per_request_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for request {self.request_id} ({self.state})"
