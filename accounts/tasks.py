"""The password reset email, sent by the worker: a slow or failing SMTP server costs a
worker's time, never a web request's."""

import smtplib
from typing import Any
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMultiAlternatives
from django.template import loader


class _ResetMailer(PasswordResetForm):
    """Django's reset form, whose send_mail raises instead of logging and carrying on,
    so a transient SMTP failure is retried."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        if html_email_template_name is not None:
            html = loader.render_to_string(html_email_template_name, context)
            message.attach_alternative(html, "text/html")
        message.send()


def _transient(exc: BaseException) -> bool:
    """A dropped connection or a 4xx reply may pass; a 5xx reply (bad address) will not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code < 500
    return isinstance(exc, OSError)


@shared_task(bind=True, name="accounts.tasks.send_password_reset", max_retries=5)
def send_password_reset(self: Any, email: str) -> None:
    """Mail a reset link to each active account with this address (usually none or one).

    Takes the address, not a user: the web request never looks accounts up, so its
    answer and its timing are the same whether the address has one. The link's host is
    PUBLIC_BASE_URL's, never the request's Host header.
    """
    form = _ResetMailer({"email": email})
    if not form.is_valid():
        return
    base = urlsplit(settings.PUBLIC_BASE_URL)
    try:
        form.save(domain_override=base.netloc, use_https=base.scheme == "https")
    except Exception as exc:
        if _transient(exc):
            raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc
        raise
