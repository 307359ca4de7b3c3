"""`manage.py check --deploy`: production needs its own key for calendar credentials,
and the SSRF guard on."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def credentials_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.CALENDAR_CREDENTIALS_KEY_REQUIRED and not settings.CALENDAR_CREDENTIALS_KEY.strip():
        return [
            Error(
                "CALENDAR_CREDENTIALS_KEY is not set: calendar links and passwords cannot be "
                "stored or read.",
                hint='python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="calendars.E001",
            )
        ]
    if settings.CALENDAR_CREDENTIALS_KEY.strip():
        from django.core.exceptions import ImproperlyConfigured

        from .crypto import _fernet

        try:
            _fernet()
        except ImproperlyConfigured as exc:
            return [Error(str(exc), id="calendars.E002")]
    return []


@register(Tags.security, deploy=True)
def private_addresses(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES:
        return [
            Warning(
                "CALENDAR_ALLOW_PRIVATE_ADDRESSES is on: a calendar address a tutor types "
                "can make the server fetch from private, loopback and link-local addresses "
                "(the cloud metadata service, databases on your network).",
                hint="Turn it off unless every tutor is trusted with your network.",
                id="calendars.W001",
            )
        ]
    return []
