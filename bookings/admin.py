"""The Django admin, usable by a tutor: each staff tutor sees only their own rows.

Every write goes through the services (rule_save, offering_save, block_create, ...),
the same ones the web pages and the API call; their refusals come back as form errors.
Times of slots and the details of bookings are not edited here: slots come from rules
or the one-off service, and bookings change through the actions (cancel, outcomes).

No page shows a secret: manage tokens and feed tokens (and the URLs that carry them)
are left out or redacted, for superusers too, and no filter can probe them.
"""

import calendar
import json
import re
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import IntegrityError, models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import services, validation
from .availability import slots_materialise
from .errors import ApplicationError, apply_error
from .models import (
    Actor,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingSeries,
    BookingStatus,
    Mode,
    Notification,
    NotificationState,
    Offering,
    Slot,
    TimeRequest,
    Tutor,
)

# --- secrets --------------------------------------------------------------------------------

# Fields that hold a secret or a URL carrying one: never shown, never filtered on.
SECRET_FIELDS = frozenset(
    {
        "manage_key",  # half of the manage link (bookings.tokens)
        "manage_legacy_digest",
        "feed_key",
        "feed_legacy_digest",
        "request_key",
        "offer_key",  # half of a requested time's private offer link
        "client_digest",
        "checkout_url",
    }
)
# Fields shown only redacted (free text and JSON that may quote a secret): no filter or
# search on them either, or a filter could guess the secret one character at a time.
REDACTED_FIELDS = frozenset({"payload", "context", "data", "last_error", "outcome"})
UNFILTERABLE = SECRET_FIELDS | REDACTED_FIELDS

REDACTED = "[redacted]"
# Paths whose next segment is a manage or feed token, with "/" written plainly or
# percent-encoded (a URL quoted inside another URL's query).
_SEP = r"(?:/|%2[fF])"
_TOKEN_PATH = re.compile(
    rf"({_SEP}(?:api{_SEP})?bookings{_SEP}|{_SEP}calendar{_SEP}"
    rf"|{_SEP}payments{_SEP}(?:return|simulated){_SEP}|{_SEP}reset{_SEP}[^/%?#&\s]+{_SEP})"
    r"[^/%?#&\s\"'<>.]+"
)
# A link's token standing on its own: signed (bookings.tokens, 65 characters) or made
# before signed links (43).
_TOKEN_SHAPE = re.compile(
    r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]{65}|[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])"
)
_SECRET_KEY = re.compile(r"token|secret|password|digest", re.IGNORECASE)


def redact_text(text: str) -> str:
    """The text with manage and feed tokens (and anything shaped like one) cut out."""
    return _TOKEN_SHAPE.sub(REDACTED, _TOKEN_PATH.sub(rf"\1{REDACTED}", text))


def redact(value: Any) -> Any:
    """A JSON value with every secret replaced: values under secret-sounding keys, and
    tokens inside strings (success_url, cancel_url, metadata, error messages...)."""
    if isinstance(value, dict):
        return {
            redact_text(str(k)): REDACTED if _SECRET_KEY.search(str(k)) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redacted_json(value: Any) -> str:
    text = json.dumps(redact(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


# --- input at the edge ------------------------------------------------------------------------


def _text_check(db_field: models.Field) -> Any:
    """The edge's check for a text field (bookings/validation.py, as the forms and API)."""
    if db_field.name in validation.NAME_FIELDS:
        return validation.check_name
    multiline = isinstance(db_field, models.TextField)
    return lambda value: validation.check_text(value, multiline=multiline)


def _moment_check(value: datetime) -> None:
    # One-off slots and blocked periods: a year of planning, as in the web pages.
    validation.check_moment(value, days_ahead=validation.PLAN_DAYS_AHEAD)


class BoundedChoices(forms.ModelMultipleChoiceField):
    """Many-to-many choices where an id past 64 bits is a wrong choice, not a 500
    (SQLite cannot even compare with such a number)."""

    def clean(self, value: Any) -> Any:
        try:
            return super().clean(value)
        except OverflowError:
            raise ValidationError(
                "Select a valid choice.", code="invalid_choice", params={"value": ""}
            ) from None


class BoundedChoicesAdmin(admin.ModelAdmin):
    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("form_class", BoundedChoices)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


# What a save may run into that the person filling in the form can fix.
Refusal = ApplicationError | IntegrityError | OverflowError
REFUSALS = (ApplicationError, IntegrityError, OverflowError)


class SafeChangeList(ChangeList):
    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:
            # A date far outside the calendar (?start__year=9999&start__month=12...): the
            # list answers as it does for any other bad filter.
            raise IncorrectLookupParameters(exc) from exc


class SafeAdmin(BoundedChoicesAdmin):
    """Inputs checked as at every edge (plain text, dates the code can do arithmetic
    with; numbers are bounded by the models), no filter on a secret, and the services'
    refusals (or a constraint the database caught) shown on the form instead of a 500."""

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            kwargs.setdefault("assume_scheme", "https")
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is None:
            return field
        if isinstance(db_field, (models.CharField, models.TextField)):
            field.validators.append(_text_check(db_field))
            limit = db_field.max_length or validation.TEXT_MAX_LENGTHS.get(
                db_field.name, validation.BIO_MAX_LENGTH
            )
            if isinstance(field, forms.CharField) and field.max_length is None:
                field.max_length = limit
                field.widget.attrs["maxlength"] = str(limit)
                field.validators.append(MaxLengthValidator(limit))
        elif isinstance(db_field, models.DateTimeField):
            field.validators.append(_moment_check)
        elif isinstance(db_field, models.DateField):
            field.validators.append(validation.DateWithin())
        return field

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SafeChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if UNFILTERABLE.intersection(lookup.split("__")):
            return False
        return super().lookup_allowed(lookup, value, request)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except REFUSALS as exc:
            # The save ran in the view's transaction, which is rolled back by now. Show the
            # same form again with the refusal on it: the second pass fails validation, so
            # nothing is saved.
            if request.method != "POST" or hasattr(request, "_admin_refusal"):
                raise
            request._admin_refusal = exc  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        refusal: Refusal | None = getattr(request, "_admin_refusal", None)
        if refusal is None:
            return form
        error = refusal

        class Refused(form):  # type: ignore[valid-type,misc]
            def clean(self) -> Any:
                data = super().clean()
                _add_refusal(self, error)
                return data

        Refused.__name__ = form.__name__
        return Refused


def _add_refusal(form: forms.BaseForm, exc: Refusal) -> None:
    """A service's error next to the field it names, or at the top of the form."""
    if isinstance(exc, OverflowError):  # a date at the end of the calendar, plus a length
        form.add_error(None, "A date or a number is out of range.")
        return
    if isinstance(exc, IntegrityError):  # the database caught what the form could not
        form.add_error(None, "This clashes with another record (an overlap or a duplicate).")
        return
    apply_error(form, exc)


def _changed(form: forms.ModelForm, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The model fields the form changed, as a service takes them."""
    model_fields = {f.name for f in form._meta.model._meta.get_fields()}
    return {
        name: form.cleaned_data[name]
        for name in form.changed_data
        if name in model_fields and name not in skip
    }


def _fields(form: forms.ModelForm, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every model field on the form, as a service takes them."""
    model_fields = {f.name for f in form._meta.model._meta.get_fields()}
    return {
        name: value
        for name, value in form.cleaned_data.items()
        if name in model_fields and name not in skip
    }


# --- the tutor's own rows ---------------------------------------------------------------------


def own_tutor(request: HttpRequest) -> Tutor | None:
    """The signed-in tutor (None for a superuser or a staff account without a profile)."""
    return getattr(request.user, "tutor", None)


# What a related-row dropdown may list for a tutor: the path from the row to its tutor.
TUTOR_PATHS: dict[type[models.Model], str] = {
    Tutor: "",
    Offering: "tutor",
    AvailabilityRule: "tutor",
    BlockedPeriod: "tutor",
    Slot: "tutor",
    Booking: "tutor",
    BookingSeries: "tutor",
    Notification: "booking__tutor",
}


class TutorOwnedAdmin(SafeAdmin):
    """Rows of the signed-in tutor only (superusers see everything)."""

    tutor_field = "tutor"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return _scoped(super().get_queryset(request), request, self.tutor_field)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.tutor_field == "tutor":
            excluded.append("tutor")
        return excluded

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.tutor_field == "tutor" and request.user.is_superuser:
            readonly.append("tutor")  # a row does not move to another tutor
        return readonly

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser and db_field.related_model in TUTOR_PATHS:
            kwargs["queryset"] = _scoped(
                db_field.related_model._default_manager.all(),
                request,
                TUTOR_PATHS[db_field.related_model],
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser and db_field.related_model in TUTOR_PATHS:
            kwargs["queryset"] = _scoped(
                db_field.related_model._default_manager.all(),
                request,
                TUTOR_PATHS[db_field.related_model],
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if not request.user.is_superuser and own_tutor(request) is None:
            return False  # staff without a tutor profile have no rows to add to
        return super().has_add_permission(request)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        tutor = own_tutor(request)
        if obj is not None or request.user.is_superuser or tutor is None:
            return form
        if self.tutor_field != "tutor":
            return form

        class Own(form):  # type: ignore[valid-type,misc]
            """A new row is the signed-in tutor's from the start, so validation (and the
            service after it) sees whose it is."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.instance.tutor = tutor

        Own.__name__ = form.__name__
        return Own


def _scoped(qs: QuerySet, request: HttpRequest, path: str) -> QuerySet:
    if request.user.is_superuser:
        return qs
    tutor = own_tutor(request)
    if tutor is None:
        return qs.none()
    if not path:  # the tutors themselves
        return qs.filter(pk=tutor.pk)
    return qs.filter(**{path: tutor})


class ViewOnlyRows(admin.ModelAdmin):
    """Rows that open for reading; only the list's actions (which have the change
    permission) change them."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)


# --- tutors -----------------------------------------------------------------------------------


@admin.register(Tutor)
class TutorAdmin(SafeAdmin):
    list_display = ["display_name", "slug", "timezone", "currency", "is_active"]
    prepopulated_fields = {"slug": ["display_name"]}
    actions = ["materialise"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return _scoped(super().get_queryset(request), request, "")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A profile is tied to an account when it is made: only a superuser does that.
        return request.user.is_superuser

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            excluded.append("user")
        return excluded

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.is_superuser:
            readonly.append("user")  # the profile and its history belong to one account
        return readonly

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(tutor__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Tutor, form: Any, change: bool) -> None:
        if not change:
            obj.save()
            return
        # From the database: the form has already written its input onto obj, and the
        # service compares the old time zone with the new one.
        services.tutor_save(
            tutor=Tutor.objects.get(pk=obj.pk), now=timezone.now(), **_changed(form)
        )

    @admin.action(description="Fill the slot horizon from the weekly rules now")
    def materialise(self, request: HttpRequest, queryset: QuerySet[Tutor]) -> None:
        for tutor in queryset:
            result = slots_materialise(tutor=tutor, now=timezone.now())
            self.message_user(request, f"{tutor}: {result}")


# --- what a tutor offers, and when ---------------------------------------------------------


@admin.register(Offering)
class OfferingAdmin(TutorOwnedAdmin):
    list_display = ["title", "mode", "duration_minutes", "price_amount", "currency", "is_active"]
    list_filter = ["mode", "is_active"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tutor = own_tutor(request)
        if tutor is not None:
            initial.setdefault("currency", tutor.currency)
        return initial

    def save_model(self, request: HttpRequest, obj: Offering, form: Any, change: bool) -> None:
        services.offering_save(
            tutor=obj.tutor,
            now=timezone.now(),
            offering=obj,
            **_fields(form, skip=("tutor",)),
        )


WEEKDAYS = [(day, calendar.day_abbr[day - 1]) for day in range(1, 8)]


class RuleForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = AvailabilityRule
        fields = [
            "tutor",
            "weekdays",
            "start_time",
            "end_time",
            "offerings",
            "valid_from",
            "valid_until",
            "is_active",
        ]


@admin.register(AvailabilityRule)
class RuleAdmin(TutorOwnedAdmin):
    form = RuleForm
    list_display = ["__str__", "valid_from", "valid_until", "is_active"]

    def save_model(
        self, request: HttpRequest, obj: AvailabilityRule, form: Any, change: bool
    ) -> None:
        services.rule_save(
            tutor=obj.tutor,
            now=timezone.now(),
            rule=obj,
            **{**_fields(form, skip=("tutor",)), "offerings": list(form.cleaned_data["offerings"])},
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the offerings were set by rule_save
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: AvailabilityRule) -> None:
        services.rule_delete(rule=obj, now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for rule in queryset:
            services.rule_delete(rule=rule, now=timezone.now())


@admin.register(BlockedPeriod)
class BlockedPeriodAdmin(TutorOwnedAdmin):
    """Blocks are added and removed; to change one, remove it and add another."""

    list_display = ["start", "end", "reason"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: BlockedPeriod, form: Any, change: bool) -> None:
        block = services.block_create(
            tutor=obj.tutor,
            start=obj.start,
            end=obj.end,
            reason=obj.reason,
            now=timezone.now(),
        )
        obj.pk = block.pk

    def delete_model(self, request: HttpRequest, obj: BlockedPeriod) -> None:
        services.block_delete(block=obj, now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for block in queryset:
            services.block_delete(block=block, now=timezone.now())


class SlotAddForm(forms.ModelForm):
    """A one-off slot: its start and what it offers; the end follows from the length."""

    class Meta:
        model = Slot
        fields = ["tutor", "start", "remote_offering", "in_person_offering"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("remote_offering") or data.get("in_person_offering")):
            raise ValidationError("Offer the slot remote, in person, or both.")
        return data


@admin.register(Slot)
class SlotAdmin(ViewOnlyRows, TutorOwnedAdmin):
    """Slots come from the weekly rules or the one-off service; their times are not
    edited here (withdraw the slot and add another)."""

    list_display = ["start", "end", "source", "remote_offering", "in_person_offering", "removed_at"]
    list_filter = ["source", "removed_reason"]
    date_hierarchy = "start"
    readonly_fields = [
        "start",
        "end",
        "source",
        "rule",
        "remote_offering",
        "in_person_offering",
        "removed_at",
        "removed_reason",
    ]
    actions = ["withdraw"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = SlotAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            fields = ["tutor", "start", "remote_offering", "in_person_offering"]
            return fields if request.user.is_superuser else fields[1:]
        return ["tutor", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_readonly_fields(request, obj) if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # withdraw instead: bookings may point at the row

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        modes = {"remote_offering": Mode.REMOTE, "in_person_offering": Mode.IN_PERSON}
        if db_field.name in modes:
            field.queryset = field.queryset.filter(mode=modes[db_field.name], is_active=True)
        return field

    def save_model(self, request: HttpRequest, obj: Slot, form: Any, change: bool) -> None:
        offered = [o for o in (obj.remote_offering, obj.in_person_offering) if o is not None]
        slot = services.slot_create_one_off(
            tutor=obj.tutor,
            start=obj.start,
            offerings=offered,
            now=timezone.now(),
        )
        obj.pk, obj.end, obj.source = slot.pk, slot.end, slot.source

    @admin.action(description="Withdraw the selected unbooked slots", permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Slot]) -> None:
        for slot in queryset:
            try:
                services.slot_delete(slot=slot, now=timezone.now())
            except ApplicationError as exc:
                self.message_user(request, f"{slot}: {exc.message}", messages.WARNING)


# --- bookings and what they owe -----------------------------------------------------------


class BookingEventInline(admin.TabularInline):
    model = BookingEvent
    extra = 0
    can_delete = False
    readonly_fields = ("at", "from_status", "to_status", "actor", "reason", "details")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="data")
    def details(self, event: BookingEvent) -> str:
        return redacted_json(event.data)


@admin.register(Booking)
class BookingAdmin(ViewOnlyRows, TutorOwnedAdmin):
    """Read only: a booking changes through the actions. Its student's details stay as
    the student gave them (an edited email would send their manage link elsewhere)."""

    list_display = ["slot", "student_name", "student_email", "mode", "status", "price_amount"]
    list_filter = ["status", "mode"]
    search_fields = ["student_name", "student_email"]
    fields = (
        "tutor",
        "slot",
        "offering",
        "mode",
        "status",
        "student_name",
        "student_email",
        "student_timezone",
        "notes",
        "price_amount",
        "currency",
        "hold_expires_at",
        "refund_amount",
        "sequence",
        "confirmed_at",
        "cancelled_at",
    )
    readonly_fields = fields
    inlines = [BookingEventInline]
    actions = ["cancel", "mark_completed", "mark_no_show"]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return []  # every field is read-only; the tutor's own name may show

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # students book through the site; the slot rules apply

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # bookings are never hard-deleted

    def _each(self, request: HttpRequest, queryset: QuerySet[Booking], fn: Any) -> None:
        for booking in queryset:
            try:
                fn(booking)
            except ApplicationError as exc:
                self.message_user(request, f"{booking}: {exc.message}", messages.WARNING)

    @admin.action(description="Cancel (full refund, student notified)", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_cancel(
                booking_id=b.pk, actor=Actor.TUTOR, now=timezone.now()
            ),
        )

    @admin.action(description="Mark completed", permissions=["change"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_mark_outcome(
                booking_id=b.pk, status=BookingStatus.COMPLETED, now=timezone.now()
            ),
        )

    @admin.action(description="Mark no-show", permissions=["change"])
    def mark_no_show(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_mark_outcome(
                booking_id=b.pk, status=BookingStatus.NO_SHOW, now=timezone.now()
            ),
        )


@admin.register(BookingSeries)
class BookingSeriesAdmin(ViewOnlyRows, TutorOwnedAdmin):
    """Read only: a series is held, paid and cancelled through the site (bookings.series),
    and each week is a Booking with its own actions. The student's link key is never shown."""

    list_display = ["student_name", "student_email", "first_start", "weeks", "mode", "offering"]
    list_filter = ["mode"]
    search_fields = ["student_name", "student_email"]
    fields = (
        "tutor",
        "offering",
        "mode",
        "student_name",
        "student_email",
        "student_timezone",
        "weeks",
        "first_start",
        "timezone",
        "sequence",
        "created_at",
        "sessions",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tutor", "offering")

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return []  # every field is read-only; the tutor's own name may show

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # students hold a series through the site, all weeks or none

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # its bookings are never hard-deleted, and they point at it

    @admin.display(description="sessions")
    def sessions(self, series: BookingSeries) -> str:
        rows = series.bookings.select_related("slot").order_by("series_week")
        return format_html_join(
            mark_safe("<br>"),  # a constant
            '<a href="{}">Week {}: {} UTC</a> ({})',
            (
                (
                    reverse("admin:bookings_booking_change", args=[b.pk]),
                    b.series_week,
                    f"{b.slot.start:%Y-%m-%d %H:%M}",
                    b.get_status_display(),
                )
                for b in rows
            ),
        )


@admin.register(TimeRequest)
class TimeRequestAdmin(ViewOnlyRows, TutorOwnedAdmin):
    """Read only: students ask through the site, tutors answer on /tutor/requests/ (or
    the API), which create the private slot and the emails (bookings.time_requests).
    The offer link's key is never shown."""

    list_display = ["created_at", "student_name", "student_email", "offering", "status"]
    list_filter = ["status"]
    search_fields = ["student_name", "student_email"]
    fields = (
        "tutor",
        "offering",
        "student_name",
        "student_email",
        "student_timezone",
        "note",
        "time_1",
        "time_2",
        "time_3",
        "status",
        "accepted_choice",
        "slot",
        "offer_expires_at",
        "decline_message",
        "created_at",
        "answered_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tutor", "offering", "slot")

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return []  # every field is read-only; the tutor's own name may show

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # students ask through the site, with its limits and checks

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # an accepted request points at its private slot


@admin.register(Notification)
class NotificationAdmin(ViewOnlyRows, TutorOwnedAdmin):
    """The outbox: what was sent, what is owed, and what failed (with the error)."""

    tutor_field = "booking__tutor"
    list_display = ["due_at", "kind", "recipient", "booking", "state", "attempts", "sent_at"]
    list_filter = ["state", "kind", "recipient"]
    search_fields = ["booking__student_email"]
    readonly_fields = (
        *(f.name for f in Notification._meta.fields if f.name not in REDACTED_FIELDS),
        "message_context",
        "error",
    )
    fields = readonly_fields
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="context")
    def message_context(self, n: Notification) -> str:
        return redacted_json(n.context)

    @admin.display(description="last error")
    def error(self, n: Notification) -> str:
        return redact_text(n.last_error)

    @admin.action(description="Send again (failed rows)", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(state=NotificationState.FAILED).update(
            state=NotificationState.PENDING, due_at=timezone.now(), attempts=0
        )
        self.message_user(request, f"{count} notification(s) will be sent by the next sweep.")


# --- Django's own account pages ---------------------------------------------------------------

# The same for the group and user pages (superusers only): their permission and group
# lists are many-to-many choices too.
for _model, _admin_class in ((Group, GroupAdmin), (get_user_model(), UserAdmin)):
    admin.site.unregister(_model)
    admin.site.register(
        _model, type(_admin_class.__name__, (BoundedChoicesAdmin, _admin_class), {})
    )
