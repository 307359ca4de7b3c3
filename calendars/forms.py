"""The calendars page's forms: parse and label; services.source_create and
source_update decide."""

from django import forms

from bookings.web.forms import Form, NameField, TextField

from .models import SourceKind
from .serializers import SECRET_MAX_LENGTH, URL_MAX_LENGTH


class SourceForm(Form):
    name = NameField(label="Name (for you)", help_text="e.g. “Personal (Google)”.")
    kind = forms.ChoiceField(
        label="Kind",
        choices=SourceKind.choices,
        initial=SourceKind.ICS,
        widget=forms.RadioSelect,
    )
    url = TextField(
        label="Address",
        max_length=URL_MAX_LENGTH,
        help_text="Google: Settings → your calendar → “Secret address in iCal format”. "
        "iCloud: share the calendar publicly and copy its webcal:// link. CalDAV: the "
        "calendar's own URL. Kept encrypted; never shown again.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "inputmode": "url"}),
    )
    username = TextField(label="User name (if it asks for one)", max_length=255, required=False)
    password = forms.CharField(
        label="App password (if it asks for one)",
        max_length=SECRET_MAX_LENGTH,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Use an app-specific password, not your account password.",
    )


class SourceEditForm(Form):
    """Fixing a source: the address and credentials are never shown, so a blank field
    keeps what is stored."""

    name = NameField(label="Name (for you)")
    url = TextField(
        label="New address",
        max_length=URL_MAX_LENGTH,
        required=False,
        help_text="Leave blank to keep the current one (never shown again).",
        widget=forms.URLInput(attrs={"autocomplete": "off", "inputmode": "url"}),
    )
    username = TextField(
        label="New user name",
        max_length=255,
        required=False,
        help_text="Leave blank to keep the current one.",
    )
    password = forms.CharField(
        label="New app password",
        max_length=SECRET_MAX_LENGTH,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current one.",
    )
    forget_credentials = forms.BooleanField(
        label="Forget the stored user name and password",
        required=False,
    )

    def credentials(self) -> tuple[str | None, str | None]:
        """The user name and password for source_update: None keeps what is stored."""
        data = self.cleaned_data
        if data["forget_credentials"]:
            return "", ""
        return data["username"] or None, data["password"] or None
