"""Money records in the admin: a tutor sees the payments and refunds of their own
bookings; Stripe's events, which no tutor owns reliably, only superusers see. No page
shows a checkout URL or a manage token (the events' success_url carries one)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from bookings.admin import (
    REDACTED_FIELDS,
    SECRET_FIELDS,
    SafeAdmin,
    TutorOwnedAdmin,
    redact_text,
    redacted_json,
)

from .models import Payment, Refund, StripeEvent


def _shown(model: Any, *extra: str) -> tuple[str, ...]:
    """The model's fields a page may show as they are, then the redacted ones."""
    plain = (
        f.name
        for f in model._meta.fields
        if f.name not in SECRET_FIELDS and f.name not in REDACTED_FIELDS
    )
    return (*plain, *extra)


class ReadOnly:
    """Money records are evidence: visible, never edited or deleted by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RefundInline(ReadOnly, admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ("amount", "reason", "status", "stripe_refund_id", "attempts", "error", "created_at")
    readonly_fields = fields

    @admin.display(description="last error")
    def error(self, refund: Refund) -> str:
        return redact_text(refund.last_error)


@admin.register(Payment)
class PaymentAdmin(ReadOnly, TutorOwnedAdmin):
    tutor_field = "booking__tutor"
    list_display = [
        "created_at",
        "booking",
        "provider",
        "amount",
        "currency",
        "status",
        "refunded_amount",
    ]
    list_filter = ["status", "provider"]
    search_fields = ["checkout_session_id", "payment_intent_id", "booking__student_email"]
    fields = readonly_fields = _shown(Payment, "error")
    inlines = [RefundInline]

    @admin.display(description="last error")
    def error(self, payment: Payment) -> str:
        return redact_text(payment.last_error)


@admin.register(Refund)
class RefundAdmin(ReadOnly, TutorOwnedAdmin):
    tutor_field = "payment__booking__tutor"
    list_display = ["created_at", "payment", "amount", "reason", "status", "attempts"]
    list_filter = ["status"]
    fields = readonly_fields = _shown(Refund, "error")

    @admin.display(description="last error")
    def error(self, refund: Refund) -> str:
        return redact_text(refund.last_error)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnly, SafeAdmin):
    list_display = ["received_at", "type", "event_id", "processed_at", "result"]
    list_filter = ["type"]
    search_fields = ["event_id"]
    fields = readonly_fields = _shown(StripeEvent, "result", "body")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.display(description="outcome")
    def result(self, event: StripeEvent) -> str:
        return redact_text(event.outcome)

    @admin.display(description="payload (secrets redacted)")
    def body(self, event: StripeEvent) -> str:
        return redacted_json(event.payload)
