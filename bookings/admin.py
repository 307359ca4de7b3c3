"""The Django admin, usable by a tutor: each staff tutor sees only their own rows.

Changes that carry rules (cancelling, recording outcomes, availability) go through the
services, as actions or after saving, never as raw field edits.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from . import services
from .availability import slots_materialise
from .errors import ApplicationError
from .models import (
    Actor,
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingStatus,
    Notification,
    NotificationState,
    Offering,
    Slot,
    Tutor,
)


class TutorOwnedAdmin(admin.ModelAdmin):
    """Rows of the signed-in tutor only (superusers see everything)."""

    tutor_field = "tutor"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        tutor = getattr(request.user, "tutor", None)
        return qs.filter(**{self.tutor_field: tutor}) if tutor else qs.none()

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.tutor_field == "tutor":
            excluded.append("tutor")
        return excluded

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and not request.user.is_superuser and self.tutor_field == "tutor":
            obj.tutor = request.user.tutor  # type: ignore[union-attr]
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Offering and not request.user.is_superuser:
            kwargs["queryset"] = Offering.objects.filter(tutor__user_id=request.user.pk or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Offering and not request.user.is_superuser:
            kwargs["queryset"] = Offering.objects.filter(tutor__user_id=request.user.pk or 0)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Tutor)
class TutorAdmin(admin.ModelAdmin):
    list_display = ["display_name", "slug", "timezone", "currency", "is_active"]
    prepopulated_fields = {"slug": ["display_name"]}
    actions = ["materialise"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    @admin.action(description="Fill the slot horizon from the weekly rules now")
    def materialise(self, request: HttpRequest, queryset: QuerySet[Tutor]) -> None:
        for tutor in queryset:
            result = slots_materialise(tutor=tutor, now=timezone.now())
            self.message_user(request, f"{tutor}: {result}")


@admin.register(Offering)
class OfferingAdmin(TutorOwnedAdmin):
    list_display = ["title", "mode", "duration_minutes", "price_amount", "currency", "is_active"]
    list_filter = ["mode", "is_active"]


@admin.register(AvailabilityRule)
class RuleAdmin(TutorOwnedAdmin):
    list_display = ["__str__", "valid_from", "valid_until", "is_active"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        slots_materialise(tutor=form.instance.tutor, now=timezone.now())

    def delete_model(self, request: HttpRequest, obj: AvailabilityRule) -> None:
        services.rule_delete(rule=obj, now=timezone.now())


@admin.register(BlockedPeriod)
class BlockedPeriodAdmin(TutorOwnedAdmin):
    list_display = ["start", "end", "reason"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        slots_materialise(tutor=obj.tutor, now=timezone.now())

    def delete_model(self, request: HttpRequest, obj: BlockedPeriod) -> None:
        services.block_delete(block=obj, now=timezone.now())


@admin.register(Slot)
class SlotAdmin(TutorOwnedAdmin):
    list_display = ["start", "end", "source", "remote_offering", "in_person_offering", "removed_at"]
    list_filter = ["source", "removed_reason"]
    date_hierarchy = "start"
    readonly_fields = ["source", "rule", "removed_at", "removed_reason"]
    actions = ["withdraw"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # withdraw instead: bookings may point at the row

    @admin.action(description="Withdraw the selected unbooked slots")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Slot]) -> None:
        for slot in queryset:
            try:
                services.slot_delete(slot=slot, now=timezone.now())
            except ApplicationError as exc:
                self.message_user(request, f"{slot}: {exc.message}", messages.WARNING)


class BookingEventInline(admin.TabularInline):
    model = BookingEvent
    extra = 0
    can_delete = False
    readonly_fields = ("at", "from_status", "to_status", "actor", "reason", "data")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(TutorOwnedAdmin):
    list_display = ["slot", "student_name", "student_email", "mode", "status", "price_amount"]
    list_filter = ["status", "mode"]
    search_fields = ["student_name", "student_email"]
    readonly_fields = [
        "tutor",
        "slot",
        "offering",
        "mode",
        "status",
        "price_amount",
        "currency",
        "hold_expires_at",
        "refund_amount",
        "sequence",
        "confirmed_at",
        "cancelled_at",
    ]
    fields = ("student_name", "student_email", "student_timezone", "notes", *readonly_fields)
    inlines = [BookingEventInline]
    actions = ["cancel", "mark_completed", "mark_no_show"]

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

    @admin.action(description="Cancel (full refund, student notified)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_cancel(
                booking_id=b.pk, actor=Actor.TUTOR, now=timezone.now()
            ),
        )

    @admin.action(description="Mark completed")
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_mark_outcome(
                booking_id=b.pk, status=BookingStatus.COMPLETED, now=timezone.now()
            ),
        )

    @admin.action(description="Mark no-show")
    def mark_no_show(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._each(
            request,
            queryset,
            lambda b: services.booking_mark_outcome(
                booking_id=b.pk, status=BookingStatus.NO_SHOW, now=timezone.now()
            ),
        )


@admin.register(Notification)
class NotificationAdmin(TutorOwnedAdmin):
    """The outbox: what was sent, what is owed, and what failed (with the error)."""

    tutor_field = "booking__tutor"
    list_display = ["due_at", "kind", "recipient", "booking", "state", "attempts", "sent_at"]
    list_filter = ["state", "kind", "recipient"]
    search_fields = ["booking__student_email", "last_error"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Send again (failed rows)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(state=NotificationState.FAILED).update(
            state=NotificationState.PENDING, due_at=timezone.now(), attempts=0
        )
        self.message_user(request, f"{count} notification(s) will be sent by the next sweep.")
