"""Email backends for tests: a mail server that fails on command."""

import smtplib
from collections.abc import Sequence
from typing import Any, ClassVar

from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.message import EmailMessage


class FlakyBackend(LocmemBackend):
    """Like locmem, but raises the queued errors first, one per send."""

    errors: ClassVar[list[Exception]] = []

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        return super().send_messages(messages)


def refused(code: int) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused({"sam@example.com": (code, b"mailbox unavailable")})


def outbox() -> list[Any]:
    return list(getattr(mail, "outbox", []))
