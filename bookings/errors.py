"""The one error type services raise; the API turns it into {"code", "message", "fields"}."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.forms import BaseForm


class ApplicationError(Exception):
    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        fields: dict[str, Any] | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.fields = fields or {}
        # For a conflict, why: a stable code more precise than `code`.
        self.reason = reason
        # More of the answer, as keys of its own (a series' conflicting weeks).
        self.extra: dict[str, Any] = {}


class SlotUnavailable(ApplicationError):
    """The slot (or the chosen mode in it) is not open for booking any more.

    `reason` is one of availability.CLOSED's codes (booked, travel_buffer, too_soon...).
    """

    def __init__(
        self, message: str = "This slot was just taken.", *, reason: str = "booked"
    ) -> None:
        super().__init__("slot_unavailable", message, status=409, reason=reason)


class NotFound(ApplicationError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__("not_found", message, status=404)


class PaymentUnavailable(ApplicationError):
    """The payment provider could not start a checkout; nothing was kept."""

    def __init__(self, message: str, *, status: int = 503) -> None:
        super().__init__("payment_unavailable", message, status=status)


def apply_error(form: "BaseForm", exc: ApplicationError) -> None:
    """Put a service's error next to the field it names, or at the top of the form
    (the pages' forms and the admin's)."""
    placed = False
    for name, messages in exc.fields.items():
        if name in form.fields:
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(name, str(message))
            placed = True
    if not placed:
        form.add_error(None, exc.message)
