"""Secret links: the student's manage link (one per booking) and the tutor's calendar
feed URL (one per tutor), stored once and never in plain text.

A row keeps a random key (not a secret by itself: it only says which row). The link's
token is the key followed by its signature: an HMAC-SHA256 of the key under
SECRET_KEY, salted per purpose (django.core.signing), so

- a copy of the database alone cannot make a working link (it holds keys, no
  signatures), and nothing secret has to be kept beside a digest;
- the link can still be written into every later email (a reminder, a reschedule)
  because the server can sign the key again at any time;
- a manage token cannot be used as a feed token or the other way round (the salt);
- SECRET_KEY can be rotated: put the old value in SECRET_KEY_FALLBACKS and links
  signed with it keep working until it is dropped (Django's signing checks both).

Links made before signed links (migration 0012) were 43-character random tokens of
which the database kept a SHA-256 digest; those rows keep that digest and are found
by it, so links in emails already sent keep working. New rows have no digest.

A token is one run of URL-safe characters (no separator), which is what the log
scrubber (config.observability) and the admin's redaction already recognise.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal

from django.core import signing

Purpose = Literal["manage", "feed", "series", "offer", "package"]

KEY_LENGTH = 22  # len(secrets.token_urlsafe(16)): 128 random bits
LEGACY_LENGTH = 43  # len(secrets.token_urlsafe(32)), the tokens made before 0012
_SEP = ":"
# A signed token (22-character key + 43-character SHA-256 signature) or a legacy one.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,80}")


def new_key() -> str:
    """The random key of a row's link."""
    return secrets.token_urlsafe(16)


def _signer(purpose: Purpose) -> signing.Signer:
    return signing.Signer(sep=_SEP, salt=f"bookings.links.{purpose}", algorithm="sha256")


def token_for(purpose: Purpose, key: str) -> str:
    """The token of the link to the row with this key."""
    return _signer(purpose).sign(key).replace(_SEP, "", 1)


def key_of(purpose: Purpose, token: str) -> str | None:
    """The key a signed token carries, if its signature checks out (constant time,
    current SECRET_KEY or a fallback), else None."""
    if not TOKEN_RE.fullmatch(token) or len(token) <= KEY_LENGTH:
        return None
    try:
        return _signer(purpose).unsign(token[:KEY_LENGTH] + _SEP + token[KEY_LENGTH:])
    except signing.BadSignature:
        return None


def legacy_digest(token: str) -> str:
    """How rows made before signed links find their link (SHA-256 of the old token)."""
    return hashlib.sha256(token.encode()).hexdigest()
