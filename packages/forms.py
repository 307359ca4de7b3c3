"""Forms parse and label what people type; packages.services decides what is allowed."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms

from bookings import validation
from bookings.models import Offering, Tutor
from bookings.money import ZERO_DECIMAL

from .models import MAX_SESSIONS, MAX_VALID_DAYS, Package


class PackageForm(forms.Form):
    offering = forms.ModelChoiceField(queryset=Offering.objects.none(), label="Session type")
    sessions = forms.IntegerField(min_value=1, max_value=MAX_SESSIONS, label="Sessions")
    price = forms.DecimalField(
        min_value=Decimal("0.5"),
        max_digits=10,
        decimal_places=2,
        label="Price for all the sessions",
    )
    valid_days = forms.IntegerField(
        min_value=1, max_value=MAX_VALID_DAYS, initial=183, label="Valid for (days)"
    )
    active = forms.BooleanField(required=False, initial=True, label="Offered to students")

    def __init__(self, *args: Any, tutor: Tutor, package: Package | None = None, **kw: Any):
        if package is not None:
            kw.setdefault(
                "initial",
                {
                    "offering": package.offering_id,
                    "sessions": package.sessions,
                    "price": price_units(package.price_amount, package.currency),
                    "valid_days": package.valid_days,
                    "active": package.active,
                },
            )
        kw.setdefault("label_suffix", "")
        super().__init__(*args, **kw)
        offering_field = self.fields["offering"]
        assert isinstance(offering_field, forms.ModelChoiceField)  # noqa: S101
        offering_field.queryset = Offering.objects.filter(tutor=tutor)

    def terms(self) -> dict[str, Any]:
        """The package's terms as package_create and package_update take them."""
        return {
            "offering": self.cleaned_data["offering"],
            "sessions": self.cleaned_data["sessions"],
            "price_amount": self.price_amount(),
            "valid_days": self.cleaned_data["valid_days"],
            "active": self.cleaned_data["active"],
        }

    def price_amount(self) -> int:
        offering: Offering = self.cleaned_data["offering"]
        price: Decimal = self.cleaned_data["price"]
        if offering.currency in ZERO_DECIMAL:
            return int(price.quantize(Decimal(1), ROUND_HALF_UP))
        return int((price * 100).quantize(Decimal(1), ROUND_HALF_UP))


def price_units(amount: int, currency: str) -> Decimal:
    return Decimal(amount) if currency in ZERO_DECIMAL else Decimal(amount) / 100


class BuyForm(forms.Form):
    student_name = forms.CharField(
        max_length=validation.NAME_MAX_LENGTH, label="Your name", validators=[validation.check_name]
    )
    student_email = forms.EmailField(max_length=validation.EMAIL_MAX_LENGTH, label="Your email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class BookForm(forms.Form):
    slot = forms.IntegerField(min_value=1, max_value=2**63 - 1)
