"""Forms parse and label what people type; the services decide what is allowed."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django import forms
from django.db import models
from django.db.models import QuerySet

from bookings import validation, zones
from bookings.models import Mode, Offering, Tutor, is_timezone
from bookings.money import ZERO_DECIMAL
from bookings.selectors import SESSION_LISTS
from bookings.services import ASK_MESSAGE_MAX_LENGTH

from .presenters import WEEKDAYS, money


class NoLabelColon:
    """Labels without Django's trailing colon: ours are phrases and questions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class Form(NoLabelColon, forms.Form):
    pass


def date_field(
    label: str, *, days_ahead: int = validation.MAX_DAYS_AHEAD, **kwargs: Any
) -> forms.DateField:
    """A date with the browser's date picker, from 2000 to `days_ahead` days from today
    (dates beyond are mistakes, and year 9999 overflows the day arithmetic)."""
    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    validators = [validation.DateWithin(days_ahead)]
    return forms.DateField(label=label, widget=widget, validators=validators, **kwargs)


def time_field(label: str) -> forms.TimeField:
    """A wall-clock time with the browser's time picker."""
    widget = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    return forms.TimeField(label=label, widget=widget)


class TextField(forms.CharField):
    """Free text: NFC, trimmed, no control characters (newlines and tabs only when
    `multiline`); max_length counts the normalised text. See bookings/validation.py."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return validation.normalise_text(super().to_python(value) or "", multiline=self.multiline)

    def validate(self, value: Any) -> None:
        super().validate(value)
        validation.check_text(value, multiline=self.multiline)


class NameField(TextField):
    """A person's or a thing's name: one line, something visible, at most 120 characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", validation.NAME_MAX_LENGTH)
        super().__init__(**kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        validation.check_name(value)


class EmailAddressField(forms.EmailField):
    """An email address without control characters (Django's validator lets a quoted
    local part carry them)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", validation.EMAIL_MAX_LENGTH)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return validation.normalise_text(super().to_python(value) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        validation.check_text(value)


class LinkField(forms.URLField):
    """A URL without control characters; typed without a scheme it is https (Django 6's
    default, chosen now)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return validation.normalise_text(super().to_python(value) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        validation.check_text(value)


def student_name_field() -> NameField:
    """The student's name on a booking page's form."""
    return NameField(
        label="Your name",
        error_messages={"required": "Tell us your name."},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


def student_email_field(*, help_text: str, required_message: str) -> EmailAddressField:
    """The student's email on a booking page's form; `help_text` says what is sent there."""
    return EmailAddressField(
        label="Email",
        help_text=help_text,
        error_messages={
            "required": required_message,
            "invalid": "That does not look like an email address (e.g. sam@example.com).",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class BookingForm(Form):
    slot = forms.IntegerField(
        label="Time",
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.HiddenInput,
        error_messages={"required": "Pick a time.", "invalid": "Pick a time."},
    )
    mode = forms.ChoiceField(
        label="How do you want to meet?",
        choices=Mode.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose remote or in person."},
    )
    student_name = student_name_field()
    student_email = student_email_field(
        help_text="Your confirmation and calendar invite go here.",
        required_message="We need your email to send the confirmation.",
    )
    notes = TextField(
        multiline=True,
        label="What do you want to work on? (optional)",
        max_length=validation.NOTES_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    student_timezone = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, modes: list[tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if modes is not None:
            self.set_modes(modes)

    def set_modes(self, modes: list[tuple[str, str]]) -> None:
        """Offer only these modes (what the slot offers), labelled with their prices."""
        cast(forms.ChoiceField, self.fields["mode"]).choices = modes

    def clean_student_timezone(self) -> str:
        value: str = zones.canonical(self.cleaned_data.get("student_timezone") or "")
        return value if is_timezone(value) else ""


class RescheduleForm(Form):
    slot = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)


class TutorCancelForm(Form):
    reason = TextField(
        label="Reason (optional; the student's cancellation email quotes it)",
        max_length=validation.REASON_MAX_LENGTH,
        required=False,
    )


class AskToMoveForm(Form):
    """The tutor asks the student to pick another time themselves."""

    message = TextField(
        multiline=True,
        label="Message to the student (optional)",
        help_text="For example why the time no longer works for you.",
        max_length=ASK_MESSAGE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TutorRescheduleForm(Form):
    """The open slot the tutor moves a session to (the page lists them as radios)."""

    slot = forms.TypedChoiceField(
        label="New time",
        coerce=int,
        error_messages={
            "required": "Pick the new time.",
            "invalid_choice": "That time is no longer open: pick another one.",
        },
    )

    def __init__(self, *args: Any, slot_ids: list[int], **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["slot"]).choices = [
            (str(pk), str(pk)) for pk in slot_ids
        ]


class BlockCancelForm(Form):
    """Which of the sessions inside a blocked period to cancel, and why."""

    bookings = forms.MultipleChoiceField(
        label="Sessions to cancel",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one session to cancel."},
    )
    reason = TutorCancelForm.base_fields["reason"]

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["bookings"]).choices = choices


class SessionSearchForm(Form):
    """The dashboard's search by student, within one of its lists."""

    q = TextField(
        label="Student name or email",
        max_length=validation.EMAIL_MAX_LENGTH,
        required=False,
        widget=forms.SearchInput(attrs={"autocomplete": "off"}),
    )
    show = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_show(self) -> str:
        """Which list: an unknown name (an edited link) shows the upcoming sessions."""
        value: str = self.cleaned_data.get("show") or ""
        return value if value in SESSION_LISTS else "upcoming"


class OfferingsField(forms.ModelMultipleChoiceField):
    """Checkboxes of the tutor's session types, each with its mode, length and price."""

    def clean(self, value: Any) -> QuerySet[Offering]:
        # An id beyond the database's integers names no offering; looked up, it would
        # overflow the query (a 500 on SQLite) instead of being refused.
        for pk in value if isinstance(value, list | tuple) else ():
            try:
                number = int(pk)
            except (TypeError, ValueError):
                continue  # not a number at all: the parent refuses it
            if not 0 < number < 2**63:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super().clean(value)

    def label_from_instance(self, obj: Offering) -> str:
        return (
            f"{obj.title} — {obj.get_mode_display()}, {obj.duration_minutes} min, "
            f"{money(obj.price_amount, obj.currency)}"
        )


def active_offerings(tutor: Tutor) -> QuerySet[Offering]:
    """Remote ("remote" sorts after "in_person") first, as on the public page."""
    offered = Offering.objects.filter(tutor=tutor, is_active=True)
    return offered.order_by("-mode", "duration_minutes")


def offerings_field(label: str) -> OfferingsField:
    """Filled with the tutor's active offerings by TutorOfferingsForm."""
    return OfferingsField(
        label=label,
        queryset=Offering.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one session type."},
    )


class TutorOfferingsForm(Form):
    """A form with an `offerings` field listing the tutor's active offerings."""

    def __init__(self, *args: Any, tutor: Tutor, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(OfferingsField, self.fields["offerings"]).queryset = active_offerings(tutor)


class RuleForm(TutorOfferingsForm):
    # Each form on the availability page has its own prefix: their fields share names
    # (start_time, offerings), and element ids must be unique on a page.
    prefix = "rule"
    weekdays = forms.TypedMultipleChoiceField(
        label="Days",
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one day."},
    )
    start_time = time_field("From")
    end_time = time_field("Until")
    offerings = offerings_field("Sessions offered in these slots")
    valid_from = date_field("Starting on (optional)", required=False)
    valid_until = date_field("Ending on (optional)", required=False)
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", "The end must be after the start (same day).")
        chosen = data.get("offerings") or []
        if len({o.duration_minutes for o in chosen}) > 1:
            self.add_error("offerings", "A slot has one length: pick sessions of the same length.")
        if len({o.mode for o in chosen}) < len(chosen):
            self.add_error("offerings", "Pick at most one remote and one in-person session.")
        return data


class BlockForm(Form):
    prefix = "block"
    first_day = date_field("First day off", days_ahead=validation.PLAN_DAYS_AHEAD)
    last_day = date_field("Last day off", days_ahead=validation.PLAN_DAYS_AHEAD)
    reason = TextField(
        label="Note (optional)", max_length=validation.REASON_MAX_LENGTH, required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("first_day"), data.get("last_day")
        if first and last and last < first:
            self.add_error("last_day", "The last day cannot be before the first.")
        return data


class OneOffSlotForm(TutorOfferingsForm):
    prefix = "slot"
    day = date_field("Date", days_ahead=validation.PLAN_DAYS_AHEAD)
    start_time = time_field("Starts at")
    offerings = offerings_field("Sessions offered")


def edge_fields(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """ModelForm fields for text, email and links go through the checks of the fields
    above, so a model field added later is validated without anyone remembering to."""
    if field.choices:
        return field.formfield(**kwargs)
    if isinstance(field, models.EmailField):
        return field.formfield(form_class=EmailAddressField, **kwargs)
    if isinstance(field, models.URLField):
        return field.formfield(form_class=LinkField, **kwargs)
    if isinstance(field, models.TextField):
        kwargs.setdefault("max_length", validation.TEXT_MAX_LENGTHS.get(field.name))
        return field.formfield(form_class=TextField, multiline=True, **kwargs)
    if isinstance(field, models.CharField):
        name = field.name in validation.NAME_FIELDS
        return field.formfield(form_class=NameField if name else TextField, **kwargs)
    return field.formfield(**kwargs)


class TutorSettingsForm(NoLabelColon, forms.ModelForm):
    class Meta:
        model = Tutor
        fields = [
            "display_name",
            "headline",
            "bio",
            "email",
            "timezone",
            "min_notice_minutes",
            "travel_buffer_minutes",
            "full_refund_hours",
        ]
        labels = {
            "display_name": "Your name as students see it",
            "email": "Email for booking notifications",
            "timezone": "Your time zone (weekly rules are in it)",
            "min_notice_minutes": "Minimum notice (minutes)",
            "travel_buffer_minutes": "Travel buffer around in-person sessions (minutes)",
            "full_refund_hours": "Full refund when students cancel at least this many hours ahead",
        }
        widgets = {"bio": forms.Textarea(attrs={"rows": 4})}
        formfield_callback = edge_fields


class OfferingForm(NoLabelColon, forms.ModelForm):
    """An offering with its price typed in major units ("90" or "90.50")."""

    price = forms.DecimalField(label="Price", min_value=Decimal(0), max_digits=9, decimal_places=2)

    class Meta:
        model = Offering
        fields = [
            "mode",
            "title",
            "description",
            "duration_minutes",
            "video_url",
            "place_name",
            "place_address",
            "is_active",
        ]
        labels = {
            "duration_minutes": "Length (minutes)",
            "video_url": "Video call link (remote)",
            "place_name": "Meeting place (in person)",
            "place_address": "Address (in person)",
            "is_active": "Offered to students",
        }
        help_texts = {
            "video_url": "Students get it once they have paid.",
            "place_name": "For example a library or a café.",
            "place_address": "Shown with a map link.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        formfield_callback = edge_fields

    def __init__(self, *args: Any, tutor: Tutor, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tutor = tutor
        self.instance.tutor = tutor
        if not self.instance.pk:
            self.instance.currency = tutor.currency
        currency = self.instance.currency
        self.fields["price"].label = f"Price ({currency.upper()})"
        if self.instance.pk:
            amount = self.instance.price_amount
            self.initial["price"] = (
                Decimal(amount) if currency in ZERO_DECIMAL else Decimal(amount) / 100
            )

    def _minor(self, price: Decimal) -> int:
        minor = price if self.instance.currency in ZERO_DECIMAL else price * 100
        return int(minor.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def clean_price(self) -> Decimal:
        """Within what Stripe charges (the model's bounds, in minor units)."""
        price: Decimal = self.cleaned_data["price"]
        amount, currency = self._minor(price), self.instance.currency
        if amount < validation.MIN_PRICE_AMOUNT:
            lowest = money(validation.MIN_PRICE_AMOUNT, currency)
            raise forms.ValidationError(f"The price must be at least {lowest}.")
        if amount > validation.MAX_PRICE_AMOUNT:
            highest = money(validation.MAX_PRICE_AMOUNT, currency)
            raise forms.ValidationError(f"The price can be at most {highest}.")
        return price

    def changes(self) -> dict[str, Any]:
        """The cleaned fields as services.offering_save takes them (price in minor units)."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["price_amount"] = self._minor(self.cleaned_data["price"])
        return data
