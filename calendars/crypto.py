"""Calendar credentials (private links, user names, app passwords) encrypted at rest.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under the keys in
settings.CALENDAR_CREDENTIALS_KEY: comma-separated, newest first. MultiFernet encrypts
with the first and decrypts with any, so a key is rotated by putting a new one in front
(rows re-encrypt when next saved). In production (CALENDAR_CREDENTIALS_KEY_REQUIRED) a
missing key fails `check --deploy` (calendars/checks.py) and every use, naming the
variable; on a developer machine or in tests, where it may be empty, a key is derived
from SECRET_KEY.
"""

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt"]

MISSING = (
    "Set CALENDAR_CREDENTIALS_KEY (Fernet keys, comma-separated, newest first): "
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.CALENDAR_CREDENTIALS_KEY.split(",") if k.strip()]
    if not keys:
        if settings.CALENDAR_CREDENTIALS_KEY_REQUIRED:
            raise ImproperlyConfigured(MISSING)
        digest = hashlib.sha256(f"calendar-credentials:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "CALENDAR_CREDENTIALS_KEY must be Fernet keys, comma-separated, newest first: "
            'python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from None


def encrypt(data: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    """The stored dict; InvalidToken if no configured key opens it (a key was dropped)."""
    value = json.loads(_fernet().decrypt(token.encode()))
    if not isinstance(value, dict):
        raise InvalidToken
    return value
