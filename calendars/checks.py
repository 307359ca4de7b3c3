"""`manage.py check --deploy`: production needs its own key for calendar credentials."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def credentials_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
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
    return []
