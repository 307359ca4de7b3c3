"""Request ids, structured logs without secrets, health checks, optional Sentry.

Request ids are django-guid's (settings.DJANGO_GUID): its middleware takes the id from
X-Request-ID when that is a UUID, or makes one up, and returns it in the response
header; its Celery integration carries it in a message header into the tasks the
request queues. Here every log line gets the id (RequestIdFilter), so one booking's
trail can be followed from the web process into the worker, and loses its secrets.

Dependencies point one way: this module imports config.celery_app (the health check
asks its broker), and config.celery_app imports nothing of ours.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_guid.context import guid as request_id_var

from config.celery_app import app as celery_app

# request_id_var is django-guid's context variable: set by its middleware for each
# request and by its Celery signals for each task, None outside them.

# Secrets that travel in URLs: manage links (pages, API, invites), the tutor's calendar
# feed, Stripe's return URL, the simulated checkout and password reset links. Tutors'
# own pages (/tutor/bookings/<id>/) carry plain ids and stay readable.
_SECRET_PATH = re.compile(
    r"((?<!tutor)(?<!admin)/(?:api/)?bookings/|/calendar/|/payments/(?:return|simulated)/"
    r"|/reset/[^/\s?#]+/(?!set-password/))"
    # Every secret is 16+ characters; shorter words stay, so source paths in tracebacks
    # (.../bookings/services.py) stay readable.
    r"[^/\s?#&\"'<>.]{16,}"
)
# The same secrets in a query string or a form (session_id is Stripe's Checkout id).
_SECRET_PARAM = re.compile(
    r"(?i)((?<![A-Za-z0-9_])(?:token|session_id|secret|key|api_key|access_token|signature"
    r"|sig|password)=)[^&\s#\"'<>;,]+"
)
# Anything shaped like a generated secret (secrets.token_urlsafe, Stripe's keys and ids),
# wherever it appears: a run of 32+ URL-safe characters mixing upper and lower case.
# Long snake_case names and hex digests have no upper case and pass untouched.
_SECRET_SHAPE = re.compile(
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{32,}"
    r"(?![A-Za-z0-9_-])"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The one scrubber every log line, access line and error report goes through."""
    text = _SECRET_PATH.sub(rf"\1{REDACTED}", text)
    text = _SECRET_PARAM.sub(rf"\1{REDACTED}", text)
    return _SECRET_SHAPE.sub(REDACTED, text)


class AccessLogMiddleware:
    """One line per request: method, path (redacted like every line), status, duration.

    Placed after django-guid's middleware, so the line carries the request's id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self.get_response(request)
        logging.getLogger("tutoring.access").info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response


class BodySizeLimitMiddleware:
    """Refuse request bodies over MAX_REQUEST_BODY_BYTES before anything reads them.

    (DRF's JSON parser reads the stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    alone does not cover the API.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > settings.MAX_REQUEST_BODY_BYTES:
            status = 413 if length > 0 else 400
            return JsonResponse(
                {
                    "code": "request_too_large" if status == 413 else "malformed_request",
                    "message": f"Request bodies are limited to {settings.MAX_REQUEST_BODY_BYTES} "
                    "bytes."
                    if status == 413
                    else "Bad Content-Length header.",
                    "fields": {},
                },
                status=status,
            )
        return self.get_response(request)


class RedactFilter(logging.Filter):
    """Strips secrets from a record's final text: message, traceback and stack.

    Applied to the formatted message (not to each argument), so a secret inside an
    object's repr, a URL or an exception is caught too. Used by every handler we own:
    Django's and Celery's (settings.LOGGING) and gunicorn's (config/gunicorn.conf.py).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's to report, not ours
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_plain = logging.Formatter()


class RequestIdFilter(RedactFilter):
    """Puts the current request id on every record ("-" outside a request or task) and
    strips secrets from it.

    The id is django-guid's. (Its own log filter would write None outside requests and
    redact nothing; one filter doing both keeps the order of the two obvious.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django-guid also puts the id on the request that a django.request record
            # carries.
            given = getattr(getattr(record, "request", None), "correlation_id", None)
            record.request_id = request_id_var.get() or given or "-"
        return super().filter(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        if record.exc_info or record.exc_text:
            entry["exception"] = redact(
                record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
            )
        return json.dumps(entry, ensure_ascii=False)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: the web process answers, the database and broker too."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def scrub(value: Any) -> Any:
    """redact() over every string in an event: URLs, query strings, headers, messages."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def _scrub_event(event: Any, hint: Any) -> Any:
    return scrub(event)


def _scrub_breadcrumb(crumb: Any, hint: Any) -> Any:
    return scrub(crumb)


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float, **options: Any) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # no student emails or names leave for Sentry
        # Sentry reads log records before our handlers redact them, and sends the
        # request's URL, query string and headers: scrub everything on the way out.
        before_send=_scrub_event,
        before_send_transaction=_scrub_event,
        before_breadcrumb=_scrub_breadcrumb,
        **options,
    )
