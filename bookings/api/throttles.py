"""Rate limits for the endpoints a script would hammer: holds and manage-link lookups.

Answers are 429 with Retry-After (DRF adds the header). Counters live in the default
cache, which is Redis in production so every web process shares them.
"""

import logging

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class ScopedRate(SimpleRateThrottle):
    """Reads its rate when used, not when imported, so settings changes take effect.

    Fails open: if the cache (Redis) is down or hung, requests go through unthrottled
    rather than answering 500 — a Redis outage must not stop students booking.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("throttle %s skipped: the cache is unavailable", self.scope)
            return True

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)


logger = logging.getLogger(__name__)


class HoldsPerIPThrottle(ScopedRate):
    scope = "holds_ip"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class HoldsPerEmailThrottle(ScopedRate):
    """Per student email, so one person cannot churn holds from many addresses' worth
    of IPs (the per-email hold limit caps concurrent holds; this caps the rate)."""

    scope = "holds_email"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        email = str(data.get("student_email") or "").strip().lower()[:254]
        if not email:
            return None  # validation will refuse the request anyway
        return self.cache_format % {"scope": self.scope, "ident": email}


class ManageLinkThrottle(ScopedRate):
    """Per IP on token lookups: makes guessing (already hopeless at 256 bits) noisy."""

    scope = "manage_ip"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
