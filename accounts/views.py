"""The password reset request page: throttled, and sending nothing itself."""

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from . import limits, tasks

logger = logging.getLogger(__name__)


def _queue(email: str) -> None:
    try:
        tasks.send_password_reset.delay(email)
    except Exception:
        # The broker is down: the person asks again later. The page must not differ.
        logger.exception("password reset email could not be queued")


class QueuedPasswordResetForm(PasswordResetForm):
    def save(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(partial(_queue, self.cleaned_data["email"]))


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view with two limits, per client address and per email address (both
    counted whether or not an account has the address, so a 429 reveals nothing), and
    the email queued for the worker (accounts.tasks) once the request commits."""

    form_class = QueuedPasswordResetForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = limits.hit(
            "password_reset_ip", limits.client_ip(request), settings.PASSWORD_RESET_RATE_PER_IP
        )
        if wait:
            return self._throttled(self.get_form(), wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"].strip().lower()
        wait = limits.hit("password_reset_email", email, settings.PASSWORD_RESET_RATE_PER_EMAIL)
        if wait:
            return self._throttled(form, wait)
        return super().form_valid(form)

    def _throttled(self, form: PasswordResetForm, wait: int) -> HttpResponse:
        minutes = max(1, -(-wait // 60))
        form.is_valid()  # errors can only be added to a validated form
        form.add_error(
            "email",
            f"Too many reset requests. Please try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
        )
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(wait)
        return response
