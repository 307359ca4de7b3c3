"""Packages in the admin, scoped to the signed-in tutor like bookings/admin.py. A
purchase's ledger is read only (entries are never changed), and its link key is not
shown: the link is the student's."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from bookings.admin import TutorOwnedAdmin, ViewOnlyRows

from . import services
from .models import Entry, Package, Purchase


class PackageForm(forms.ModelForm):
    class Meta:
        model = Package
        fields = ["tutor", "offering", "sessions", "price_amount", "valid_days", "active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        offering = data.get("offering")
        tutor = getattr(self.instance, "tutor", None) if self.instance.tutor_id else None
        tutor = data.get("tutor") or tutor
        if offering is not None and tutor is not None and offering.tutor_id != tutor.pk:
            self.add_error("offering", "Pick one of this tutor's session types.")
        return data


@admin.register(Package)
class PackageAdmin(TutorOwnedAdmin):
    form = PackageForm
    list_display = ["offering", "sessions", "price_amount", "currency", "valid_days", "active"]
    list_filter = ["active"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # purchases point at it: switch it off instead

    def save_model(self, request: HttpRequest, obj: Package, form: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name]
            for name in ("offering", "sessions", "price_amount", "valid_days", "active")
        }
        if change:
            services.package_update(package=obj, **fields)
        else:
            obj.pk = services.package_create(tutor=obj.tutor, **fields).pk


class EntryInline(admin.TabularInline):
    model = Entry
    fk_name = "purchase"
    extra = 0
    can_delete = False
    readonly_fields = ("at", "kind", "credits", "booking")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Purchase)
class PurchaseAdmin(ViewOnlyRows, TutorOwnedAdmin):
    list_display = [
        "student_name",
        "student_email",
        "offering",
        "sessions",
        "paid_at",
        "expires_at",
    ]
    search_fields = ["student_name", "student_email"]
    fields = (
        "tutor",
        "package",
        "offering",
        "student_name",
        "student_email",
        "sessions",
        "price_amount",
        "currency",
        "valid_days",
        "paid_at",
        "expires_at",
        "link_sent_at",
    )
    readonly_fields = fields
    inlines = [EntryInline]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bought through the site and paid through Checkout

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Entry)
class EntryAdmin(ViewOnlyRows, TutorOwnedAdmin):
    tutor_field = "purchase__tutor"
    list_display = ["at", "purchase", "kind", "credits", "booking"]
    list_filter = ["kind"]
    readonly_fields = ("purchase", "kind", "credits", "booking", "reverses", "at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
