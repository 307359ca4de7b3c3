"""Operations: health checks, request ids from web into Celery tasks, structured logs."""

import json
import logging

import pytest
from django.test import Client

from config.celery_app import app as celery_app
from config.observability import JsonFormatter, RequestIdFilter, request_id_var

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_healthz_answers_503_when_the_broker_is_unreachable(client, monkeypatch):
    for key in ("broker_url", "broker_write_url"):
        monkeypatch.setitem(celery_app.conf, key, "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")


def test_every_response_has_a_request_id_and_echoes_a_given_one(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    given = Client(HTTP_X_REQUEST_ID="req-1234abcd").get("/healthz")
    assert given["X-Request-ID"] == "req-1234abcd"
    hostile = Client(HTTP_X_REQUEST_ID="bad id\nwith newline").get("/healthz")
    assert hostile["X-Request-ID"] != "bad id\nwith newline"


def test_the_request_id_travels_into_the_tasks_a_request_queues():
    seen: list[str] = []

    @celery_app.task(name="tests.remember_request_id")
    def remember() -> None:
        seen.append(request_id_var.get())

    token = request_id_var.set("req-from-web-123")
    try:
        # Eager here; on a real broker the id rides in a message header (celery_app.py).
        remember.apply(headers={"request_id": "req-from-web-123"})
    finally:
        request_id_var.reset(token)
    assert seen == ["req-from-web-123"]


def test_json_logs_carry_the_request_id_and_no_secrets():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1,
        "Not Found: %s", ("/bookings/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG/",), None,
    )  # fmt: skip
    token = request_id_var.set("req-42abcdef")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42abcdef"
    assert line["message"] == "Not Found: /bookings/[redacted]/"
    assert line["level"] == "WARNING"


TOKEN = "Ab3xY9_-" * 5 + "Qz9"  # the shape of secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GET /bookings/{TOKEN}/cancel/", "GET /bookings/[redacted]/cancel/"),
        (f"/api/bookings/{TOKEN}/invite.ics", "/api/bookings/[redacted]/invite.ics"),
        (f"https://h/calendar/{TOKEN}.ics", "https://h/calendar/[redacted].ics"),
        (f"/payments/return/{TOKEN}/?session_id=cs_test_a1", "/payments/return/[redacted]/"
         "?session_id=[redacted]"),
        ("/payments/simulated/45d381e4-18b1-4ab8-8cf0-4e9fd35e73f8/",
         "/payments/simulated/[redacted]/"),
        ("/accounts/reset/MQ/c4x1ab-0123456789abcdef0123456789abcdef/",
         "/accounts/reset/MQ/[redacted]/"),
        ("/accounts/reset/MQ/set-password/", "/accounts/reset/MQ/set-password/"),
        ("/x/?token=abc&page=2&api_key=k1", "/x/?token=[redacted]&page=2&api_key=[redacted]"),
        (f"Referer: https://h/anything/{TOKEN}", "Referer: https://h/anything/[redacted]"),
        # Ids the tutor's own pages carry, digests and long names stay readable.
        ("/api/tutor/bookings/12/", "/api/tutor/bookings/12/"),
        ("/tutor/bookings/45d381e4-18b1-4ab8-8cf0-4e9fd35e73f8/",
         "/tutor/bookings/45d381e4-18b1-4ab8-8cf0-4e9fd35e73f8/"),
        ("sha256 " + "ab12" * 16, "sha256 " + "ab12" * 16),
        ("in test_the_example_environment_passes_check_deploy_without_warnings",
         "in test_the_example_environment_passes_check_deploy_without_warnings"),
        ("GET /api/bookings/ 201", "GET /api/bookings/ 201"),
    ],
)  # fmt: skip
def test_redact_removes_every_secret_shape_and_keeps_the_rest(text, expected):
    from config.observability import redact

    assert redact(text) == expected
    assert redact(redact(text)) == expected


def test_tracebacks_and_arguments_of_any_type_are_redacted():
    class Url:
        def __str__(self) -> str:
            return f"https://h/bookings/{TOKEN}/"

    try:
        raise ValueError(f"no booking for /bookings/{TOKEN}/")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Failed: %s", (Url(),), sys.exc_info()
        )
    RequestIdFilter().filter(record)
    for formatter in (logging.Formatter(), JsonFormatter()):
        text = formatter.format(record)
        assert TOKEN not in text
        assert "/bookings/[redacted]/" in text


def test_sentry_events_and_breadcrumbs_carry_no_secret():
    """In its own process: Sentry's integrations patch Django and logging for good."""
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import logging, django
django.setup()
import sentry_sdk
from sentry_sdk.transport import Transport
from config.observability import init_sentry

sent = []

class Keep(Transport):
    def capture_envelope(self, envelope):
        sent.append(envelope.serialize().decode())

init_sentry("https://key@sentry.invalid/1", environment="test", traces_sample_rate=0,
            transport=Keep)
import sys, types
from django.test import Client, override_settings
from django.urls import path

def boom(request, token):
    logging.getLogger("bookings").warning("looking up /bookings/%s/", token)  # a breadcrumb
    raise RuntimeError("Internal Server Error")

urls = types.ModuleType("boom_urls")
urls.urlpatterns = [path("bookings/<str:token>/", boom)]
sys.modules["boom_urls"] = urls
with override_settings(ROOT_URLCONF="boom_urls"):
    Client(raise_request_exception=False).get(
        "/bookings/{TOKEN}/?session_id=cs_live_9", HTTP_REFERER="https://h/calendar/{TOKEN}.ics"
    )
logging.getLogger("payments").error("refund for /payments/return/%s/ failed", "{TOKEN}")
sentry_sdk.flush()
print("\\n".join(sent))
"""
    result = subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Internal Server Error" in result.stdout
    assert "refund for /payments/return/[redacted]/ failed" in result.stdout
    assert "/bookings/[redacted]/" in result.stdout
    assert TOKEN not in result.stdout
    assert "cs_live_9" not in result.stdout


def test_gunicorn_redacts_its_own_lines_even_with_its_access_log_turned_back_on():
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    from gunicorn.config import Config  # type: ignore[import-untyped]

    path = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert conf.accesslog is None

    cfg = Config()
    cfg.set("accesslog", "-")
    logger = conf.RedactingLogger(cfg)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    for log in (logger.access_log, logger.error_log):
        keep = Keep()
        for handler in log.handlers:
            for f in handler.filters:
                keep.addFilter(f)
        log.addHandler(keep)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/bookings/{TOKEN}/?session_id=cs_test_1",
        "PATH_INFO": f"/bookings/{TOKEN}/",
        "QUERY_STRING": "session_id=cs_test_1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://h/calendar/{TOKEN}.ics",
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    logger.access(response, request, environ, __import__("datetime").timedelta(seconds=0))
    logger.error("Error handling request %s", environ["RAW_URI"])
    assert len(records) == 2
    assert not any(TOKEN in line or "cs_test_1" in line for line in records), records
