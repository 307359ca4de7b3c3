from django.contrib import admin
from django.http import HttpRequest

from .models import Payment, Refund, StripeEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money records are evidence: visible, never edited or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    readonly_fields = [
        "amount",
        "reason",
        "status",
        "stripe_refund_id",
        "attempts",
        "last_error",
        "created_at",
    ]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
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
    inlines = [RefundInline]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "payment", "amount", "reason", "status", "attempts"]
    list_filter = ["status"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "processed_at", "outcome"]
    list_filter = ["type"]
    search_fields = ["event_id"]
