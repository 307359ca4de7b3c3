"""Input and output shapes of the API. Rules live in services; these only parse and render."""

from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bookings import selectors, validation
from bookings.models import (
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingStatus,
    Mode,
    Offering,
    Slot,
    Tutor,
)
from bookings.presenters import booking_facts
from bookings.selectors import OpenSlot

from .fields import (
    AwareDateTimeField,
    BoundedDateField,
    EdgeModelSerializer,
    EmailAddressField,
    NameField,
    NotesField,
    StudentTimeZoneField,
    TimeZoneField,
    WallClockTimeField,
)


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. slot_unavailable.")
    message = serializers.CharField(help_text="For people.")
    # Named like Serializer.fields: the metaclass takes declared fields out of the class
    # body, so this only adds the "fields" key to the documented shape.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field name → messages, for validation errors.",
    )
    reason = serializers.CharField(
        required=False,
        help_text="Conflicts (409) only: why, e.g. booked, travel_buffer, too_soon, withdrawn.",
    )


class MoneySerializer(serializers.Serializer):
    amount = serializers.IntegerField(help_text="In the currency's minor unit (cents).")
    currency = serializers.CharField(help_text="ISO 4217, lower case.")


class PlaceSerializer(serializers.Serializer):
    name = serializers.CharField()
    address = serializers.CharField()


# --- public ---------------------------------------------------------------------------------


class PublicOfferingSerializer(serializers.ModelSerializer):
    price = serializers.SerializerMethodField()
    place = serializers.SerializerMethodField()

    class Meta:
        model = Offering
        fields = ["id", "mode", "title", "description", "duration_minutes", "price", "place"]

    @extend_schema_field(MoneySerializer)
    def get_price(self, obj: Offering) -> dict[str, Any]:
        return money(obj.price_amount, obj.currency)

    @extend_schema_field(PlaceSerializer(allow_null=True))
    def get_place(self, obj: Offering) -> dict[str, str] | None:
        return obj.place


class TutorSerializer(serializers.ModelSerializer):
    offerings = PublicOfferingSerializer(many=True, read_only=True)

    class Meta:
        model = Tutor
        fields = ["slug", "display_name", "headline", "bio", "timezone", "currency", "offerings"]


class SlotPricesSerializer(serializers.Serializer):
    remote = MoneySerializer(required=False)
    in_person = MoneySerializer(required=False)


class SlotSerializer(serializers.Serializer):
    """Documents the slot shape; the view renders it with slot_dict() for speed."""

    id = serializers.IntegerField()
    tutor = serializers.CharField(help_text="The tutor's slug.")
    start = serializers.DateTimeField(help_text="ISO 8601 with the offset of the requested tz.")
    end = serializers.DateTimeField()
    duration_minutes = serializers.IntegerField()
    modes = serializers.ListField(child=serializers.ChoiceField(choices=Mode.choices))
    prices = SlotPricesSerializer()
    place = PlaceSerializer(allow_null=True)


class SlotListSerializer(serializers.Serializer):
    tz = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    count = serializers.IntegerField()
    results = SlotSerializer(many=True)


def slot_dict(item: OpenSlot, zone: tzinfo) -> dict[str, Any]:
    slot, offers = item.slot, item.offerings
    in_person = offers.get(Mode.IN_PERSON.value)
    return {
        "id": slot.pk,
        "tutor": slot.tutor.slug,
        "start": slot.start.astimezone(zone).isoformat(),
        "end": slot.end.astimezone(zone).isoformat(),
        "duration_minutes": int((slot.end - slot.start).total_seconds() // 60),
        "modes": list(offers),
        "prices": {mode: money(o.price_amount, o.currency) for mode, o in offers.items()},
        "place": in_person.place if in_person else None,
    }


class SlotQuerySerializer(serializers.Serializer):
    tutor = serializers.SlugField(required=False, help_text="A tutor's slug.")
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    start = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Date (local midnight in tz) or ISO datetime, from 2000 to five years "
        "ahead. Default: now.",
    )
    end = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Date (inclusive, whole day in tz) or ISO datetime. Default: start + 7 days. "
        "At most 62 days after start.",
    )
    tz = TimeZoneField(
        required=False, max_length=64, help_text="IANA zone to render times in. Default: UTC."
    )


class BookingCreateSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    mode = serializers.ChoiceField(choices=Mode.choices)
    student_name = NameField()
    student_email = EmailAddressField()
    notes = NotesField()
    student_timezone = StudentTimeZoneField(
        help_text="The student's IANA zone, for the times in emails."
    )


class RescheduleSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class SeriesWeekSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    week = serializers.IntegerField(help_text="Which week of the series (1 = the first).")
    weeks = serializers.IntegerField(help_text="Weeks the series spans, skipped ones included.")


def series_week(booking: Booking) -> dict[str, Any] | None:
    """Where a session sits in its weekly series (the series loaded with it), or None."""
    series = booking.series
    if series is None:
        return None
    return {
        "id": str(booking.series_id),
        "week": booking.series_week,
        "weeks": series.weeks,
    }


class TutorBookingSerializer(serializers.Serializer):
    """A booking as its tutor sees it: no link of the student's (those act as the student)."""

    # Documents the shape; booking_dict() renders it (the hold answers with it on every
    # call, and building these fields per response costs more than the dict).
    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=BookingStatus.choices)
    tutor = serializers.CharField(help_text="The tutor's slug.")
    tutor_name = serializers.CharField()
    slot = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    offering = serializers.CharField(help_text="The offering's title.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    student_name = serializers.CharField()
    student_email = serializers.EmailField()
    student_timezone = serializers.CharField()
    notes = serializers.CharField()
    price = MoneySerializer()
    refund = MoneySerializer(allow_null=True, help_text="What the cancellation gave back.")
    free_cancellation_until = serializers.DateTimeField(
        help_text="Until then a student's cancellation refunds in full and a move is allowed."
    )
    place = PlaceSerializer(allow_null=True, help_text="In person: where.")
    video_url = serializers.URLField(
        allow_null=True, help_text="Remote: the call link, once the session is paid for."
    )
    hold_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    series = SeriesWeekSerializer(
        allow_null=True, help_text="The weekly series this session is part of, if any."
    )

    def to_representation(self, instance: Booking) -> dict[str, Any]:
        shape = booking_dict(instance, now=timezone.now(), for_tutor=True)
        shape["series"] = series_week(instance)
        return shape


class BookingSerializer(TutorBookingSerializer):
    """A booking as its student sees it (through the manage link)."""

    payment_url = serializers.URLField(allow_null=True, help_text="While held: where to pay.")
    manage_url = serializers.URLField(help_text="The student's private page (keep it secret).")
    invite_url = serializers.URLField(help_text="The booking as .ics, once confirmed.")
    series = None  # type: ignore[assignment]  # a series' sessions answer through /api/series/

    def to_representation(self, instance: Booking) -> dict[str, Any]:
        return booking_dict(
            instance, now=timezone.now(), payment_url=self.context.get("payment_url")
        )


_DATETIME = serializers.DateTimeField()  # renders as every other datetime of the API


def _when(value: datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def booking_dict(
    booking: Booking, *, now: datetime, payment_url: str | None = None, for_tutor: bool = False
) -> dict[str, Any]:
    """The BookingSerializer shape of `booking` (its slot, tutor and offering loaded);
    the tutor's shape leaves out the student's private links."""
    facts = booking_facts(booking, now=now, for_tutor=for_tutor)
    slot = booking.slot
    shape = {
        "id": str(booking.pk),
        "status": booking.status,
        "tutor": booking.tutor.slug,
        "tutor_name": booking.tutor.display_name,
        "slot": booking.slot_id,
        "mode": booking.mode,
        "offering": booking.offering.title,
        "start": _when(slot.start),
        "end": _when(slot.end),
        "student_name": booking.student_name,
        "student_email": booking.student_email,
        "student_timezone": booking.student_timezone,
        "notes": booking.notes,
        "price": money(booking.price_amount, booking.currency),
        "refund": None
        if facts.refund_amount is None
        else money(facts.refund_amount, booking.currency),
        "free_cancellation_until": _when(facts.free_cancellation_until),
        "place": facts.place,
        "video_url": facts.video_url,
        "hold_expires_at": _when(booking.hold_expires_at),
        "created_at": _when(booking.created_at),
        "confirmed_at": _when(booking.confirmed_at),
        "cancelled_at": _when(booking.cancelled_at),
    }
    if facts.links is not None:
        shape |= {
            "payment_url": payment_url,
            "manage_url": facts.links.manage,
            "invite_url": facts.links.invite,
        }
    return shape


# --- tutor ----------------------------------------------------------------------------------


class TutorProfileSerializer(EdgeModelSerializer):
    feed_url = serializers.CharField(
        read_only=True, help_text="Private calendar feed of your sessions (subscribe to it)."
    )

    class Meta:
        model = Tutor
        fields = [
            "feed_url",
            "slug",
            "display_name",
            "headline",
            "bio",
            "email",
            "timezone",
            "currency",
            "min_notice_minutes",
            "travel_buffer_minutes",
            "full_refund_hours",
        ]
        read_only_fields = ["slug"]


class OfferingSerializer(EdgeModelSerializer):
    class Meta:
        model = Offering
        fields = [
            "id",
            "mode",
            "title",
            "description",
            "duration_minutes",
            "price_amount",
            "currency",
            "video_url",
            "place_name",
            "place_address",
            "is_active",
        ]
        extra_kwargs = {"currency": {"required": False}}


class WeekdaysField(serializers.ListField):
    child = serializers.IntegerField(min_value=1, max_value=7)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=7, **kwargs)


class OwnOfferingsMixin:
    """Offering ids resolve only among the signed-in tutor's offerings (context["tutor"]):
    another tutor's id is "does not exist", not a way in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        serializer: Any = self
        tutor = serializer.context.get("tutor")
        if tutor is not None:
            serializer.fields["offerings"].child_relation.queryset = selectors.tutor_offerings(
                tutor=tutor
            )


class RuleSerializer(OwnOfferingsMixin, EdgeModelSerializer):
    weekdays = WeekdaysField(help_text="ISO weekdays: 1 = Monday … 7 = Sunday.")
    start_time = WallClockTimeField(help_text="Local wall-clock time in your zone, e.g. 18:00.")
    end_time = WallClockTimeField(help_text="Local wall-clock time, after the start.")
    offerings = serializers.PrimaryKeyRelatedField(many=True, queryset=Offering.objects.none())
    valid_from = BoundedDateField(required=False, allow_null=True)
    valid_until = BoundedDateField(required=False, allow_null=True)

    class Meta:
        model = AvailabilityRule
        fields = [
            "id",
            "weekdays",
            "start_time",
            "end_time",
            "offerings",
            "valid_from",
            "valid_until",
            "is_active",
        ]


class BlockSerializer(EdgeModelSerializer):
    start = AwareDateTimeField(days_ahead=validation.PLAN_DAYS_AHEAD)
    end = AwareDateTimeField(days_ahead=validation.PLAN_DAYS_AHEAD)

    class Meta:
        model = BlockedPeriod
        fields = ["id", "start", "end", "reason"]


class TutorSlotSerializer(serializers.ModelSerializer):
    offerings = serializers.SerializerMethodField()
    booked = serializers.SerializerMethodField()

    class Meta:
        model = Slot
        fields = [
            "id",
            "start",
            "end",
            "source",
            "rule",
            "offerings",
            "booked",
            "removed_at",
            "removed_reason",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_offerings(self, obj: Slot) -> list[int]:
        return [i for i in (obj.remote_offering_id, obj.in_person_offering_id) if i is not None]

    @extend_schema_field(serializers.BooleanField())
    def get_booked(self, obj: Slot) -> bool:
        return obj.pk in self.context.get("booked_slot_ids", ())


class SlotCreateSerializer(OwnOfferingsMixin, serializers.Serializer):
    start = AwareDateTimeField(
        days_ahead=validation.PLAN_DAYS_AHEAD, help_text="At most a year from now."
    )
    offerings = serializers.PrimaryKeyRelatedField(many=True, queryset=Offering.objects.none())


class TutorBookingQuerySerializer(serializers.Serializer):
    status = serializers.MultipleChoiceField(choices=BookingStatus.choices, required=False)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    start_from = AwareDateTimeField(required=False)
    start_to = AwareDateTimeField(required=False)


class TutorSlotQuerySerializer(serializers.Serializer):
    start_from = AwareDateTimeField(required=False)
    start_to = AwareDateTimeField(required=False)
    include_removed = serializers.BooleanField(required=False, default=False)
