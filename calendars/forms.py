"""The calendars page's form: parses and labels; services.source_create decides."""

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
    username = TextField(label="User name (CalDAV only)", max_length=255, required=False)
    password = forms.CharField(
        label="App password (CalDAV only)",
        max_length=SECRET_MAX_LENGTH,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Use an app-specific password, not your account password.",
    )
