"""Rate limits for plain Django views (the API has DRF's throttles), and whose address
a request comes from — for these limits and for django-axes' login lockouts alike."""

import hashlib
import logging
import time

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind PROXY_COUNT proxies the X-Forwarded-For entry the nearest
    of ours added: DRF's rule, so the API's throttles, these limits and axes agree.

    (axes alone would take REMOTE_ADDR, which behind a proxy is the proxy's for every
    client: one stranger's failed logins would then lock the tutor out everywhere.)
    """
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]


def parse_rate(rate: str) -> tuple[int, int]:
    """ "5/hour" → (5, 3600); the same notation as DRF's DEFAULT_THROTTLE_RATES."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


def hit(scope: str, ident: str, rate: str | None) -> int:
    """Count one request of `ident` against `rate`: 0 if it is allowed, else the seconds
    until it would be.

    A fixed window counted with add + incr, atomic on Redis, so concurrent requests in
    several processes cannot both take the last place. If the cache is down the request
    goes through: a Redis outage must not lock people out.
    """
    if not rate:
        return 0
    limit, period = parse_rate(rate)
    now = int(time.time())
    window = now // period
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]  # no address in cache keys
    key = f"limit:{scope}:{digest}:{window}"
    try:
        cache.add(key, 0, timeout=period + 60)
        count = cache.incr(key)
    except Exception as exc:
        logger.warning("limit %s skipped: the cache is unavailable (%s)", scope, exc)
        return 0
    return 0 if count <= limit else (window + 1) * period - now
