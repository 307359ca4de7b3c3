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
