"""Operations: health checks, request ids from web into Celery tasks, structured logs."""

import json
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import setup_logging
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

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


def test_every_response_has_a_request_id_and_echoes_a_given_uuid(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert uuid.UUID(generated).hex == generated
    given = str(uuid.uuid4())
    assert Client(HTTP_X_REQUEST_ID=given).get("/healthz")["X-Request-ID"] == given


@pytest.mark.parametrize(
    "hostile",
    ["bad id\nwith newline", "req-1234abcd", "x" * 200, "[redacted]", "12345678-1234-5678-1234"],
)
def test_a_request_id_that_is_not_a_uuid_is_replaced(hostile):
    answered = Client(HTTP_X_REQUEST_ID=hostile).get("/healthz")["X-Request-ID"]
    assert answered != hostile
    assert uuid.UUID(answered).hex == answered


# --- one id from the request into the tasks it queues --------------------------------------

trail = logging.getLogger("tests.trail")


@celery_app.task(name="tests.log_in_a_task")
def log_in_a_task() -> None:
    trail.info("the task runs")


def queue_a_task(request: HttpRequest) -> HttpResponse:
    trail.info("the view queues a task")
    log_in_a_task.delay()
    return HttpResponse("queued")


urlpatterns = [path("queue/", queue_a_task)]


class Keep(logging.Handler):
    """Records as our console handler sees them: through RequestIdFilter."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def worker() -> Iterator[None]:
    """A Celery worker in a thread of this process, consuming what the test publishes
    (tests otherwise run tasks eagerly, which publishes nothing and carries no header)."""

    def keep_our_logging(**_: object) -> None:
        """Celery's testing worker would otherwise set up the root logger its own way."""

    setup_logging.connect(keep_our_logging)
    patch = pytest.MonkeyPatch()
    patch.setitem(celery_app.conf, "task_always_eager", False)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False):
            yield
    finally:
        patch.undo()
        setup_logging.disconnect(keep_our_logging)


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("worker")
def test_a_request_and_the_tasks_it_queues_log_under_the_response_request_id():
    keep = Keep()
    for name in ("tests.trail", "tutoring.access"):
        logging.getLogger(name).addHandler(keep)
    try:
        response = Client().get("/queue/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            r.getMessage() == "the task runs" for r in keep.records
        ):
            time.sleep(0.05)
    finally:
        for name in ("tests.trail", "tutoring.access"):
            logging.getLogger(name).removeHandler(keep)
    lines = {r.getMessage().split(" 200 ")[0]: r.request_id for r in keep.records}  # type: ignore[attr-defined]
    assert lines == {
        "the view queues a task": response["X-Request-ID"],
        "GET /queue/": response["X-Request-ID"],
        "the task runs": response["X-Request-ID"],
    }


def test_log_lines_outside_requests_and_tasks_show_a_dash():
    record = logging.LogRecord("celery.beat", logging.INFO, __file__, 1, "tick", (), None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"  # type: ignore[attr-defined]


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
