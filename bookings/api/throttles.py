"""Rate limits for what a script would hammer: holds and manage-link lookups.

Answers are 429 with Retry-After. Counters live in the default cache, which is Redis in
production so every web process shares them. The API and the web booking form use the
same limits (hold_rate_check / hold_rate_record).
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest | Request) -> str:
    """The client's network address: REMOTE_ADDR, or the X-Forwarded-For entry our own
    PROXY_COUNT proxies added (never one the client wrote itself)."""
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]


class ScopedRate(SimpleRateThrottle):
    """Reads its rate when used, not when imported, so settings changes take effect.

    Fails open: if the cache (Redis) is down or hung, requests go through unthrottled
    rather than answering 500 — a Redis outage must not stop students booking.
    """

    # Set by SimpleRateThrottle.__init__ from the rate (the stubs do not declare them).
    num_requests: int | None
    duration: int | None

    def allow_request(self, request: Request, view: APIView | None) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[arg-type]
        except Throttled:
            raise
        except Exception as exc:
            # Only the cache can fail in here (get_cache_key reads no request body).
            logger.warning("throttle %s skipped: the cache is unavailable (%s)", self.scope, exc)
            return True

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)

    def get_cache_key(self, request: Request, view: APIView | None) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class HoldsPerIPThrottle(ScopedRate):
    """Hold attempts per client address, whatever they ask for."""

    scope = "holds_ip"


class ManageLinkThrottle(ScopedRate):
    """Per IP on token lookups: makes guessing (already hopeless at 256 bits) noisy."""

    scope = "manage_ip"


class HoldsPerEmail(ScopedRate):
    """Holds made per student email, so one person cannot churn holds from many
    addresses' worth of IPs (the per-email hold limit caps concurrent holds; this caps
    the rate).

    Unlike the IP limit it counts only holds that were made: requests refused for bad
    input or a taken slot never count, or anyone could lock a student's email out by
    sending junk in their name. So it is not a DRF throttle class (those count every
    request before the view runs) but checked and recorded by the view.
    """

    scope = "holds_email"

    def _load(self, email: str) -> bool:
        if self.rate is None:
            return False
        self.key = self.cache_format % {"scope": self.scope, "ident": email[:254]}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - (self.duration or 0):
            self.history.pop()
        return True

    def wait_for(self, email: str) -> float | None:
        """None if `email` may hold now, else the seconds to wait."""
        try:
            if not self._load(email) or len(self.history) < (self.num_requests or 0):
                return None
        except Exception as exc:
            logger.warning("throttle %s skipped: the cache is unavailable (%s)", self.scope, exc)
            return None
        return self.wait() or 1.0

    def record(self, email: str) -> None:
        try:
            if self._load(email):
                self.throttle_success()
        except Exception as exc:
            logger.warning(
                "throttle %s not recorded: the cache is unavailable (%s)", self.scope, exc
            )


def link_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For web pages behind a private link (manage, cancel, reschedule, Stripe's return
    page): the API's per-IP limit on token lookups, answered with a 429 page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit = ManageLinkThrottle()
        if limit.allow_request(request, None):  # type: ignore[arg-type]
            return view(request, *args, **kwargs)
        wait = int(limit.wait() or 60)
        minutes = max(1, round(wait / 60))
        response = render(
            request,
            "429.html",
            {"wait": "a minute" if minutes == 1 else f"{minutes} minutes"},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response

    return wrapper


def hold_rate_check(email: str, *, request: HttpRequest | None = None) -> None:
    """Before a hold: raise Throttled (429) if the email is over its rate, or, given a
    plain Django `request` (the web form), its client is. The API counts clients with
    HoldsPerIPThrottle itself. An attempt counts against its client at once, against
    its email only once a hold is made (hold_rate_record)."""
    if request is not None:
        ip = HoldsPerIPThrottle()
        if not ip.allow_request(request, None):  # type: ignore[arg-type]
            raise Throttled(wait=ip.wait())
    wait = HoldsPerEmail().wait_for(email.strip().lower())
    if wait is not None:
        raise Throttled(wait=wait)


def hold_rate_record(email: str) -> None:
    """After a hold was made: count it against the student's email."""
    HoldsPerEmail().record(email.strip().lower())
