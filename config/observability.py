"""Request ids, structured logs without secrets, health checks, optional Sentry.

A request id is taken from X-Request-ID (when it looks like one) or made up, returned
in the response header, written on every log line, and carried into the Celery tasks
the request queues (a task message header), so one booking's trail can be followed
from the web process into the worker.
"""

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

# Manage links and calendar feeds carry their secret in the path: never log it.
_SECRET_PATH = re.compile(r"(/(?:api/)?bookings/|/calendar/|/payments/return/)[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    return _SECRET_PATH.sub(r"\1[redacted]", text)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.monotonic()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        logging.getLogger("tutoring.access").info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            extra={"request_id": rid},
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


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record and strips secrets from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        elif record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


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
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
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
    from config.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # no student emails or names leave for Sentry
    )
