"""Tutor accounts: password reset requests and login lockouts, abused."""

import smtplib
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts import tasks
from config.celery_app import app as celery_app
from tests.mailbackends import FlakyBackend

pytestmark = pytest.mark.django_db

RESET = "/accounts/password_reset/"


@pytest.fixture
def user(tutor):
    tutor.user.email = "ada@example.com"
    tutor.user.save()
    return tutor.user


@pytest.fixture
def limits(settings):
    cache.clear()

    def set_rates(*, per_ip: str = "", per_email: str = "") -> None:
        settings.PASSWORD_RESET_RATE_PER_IP = per_ip
        settings.PASSWORD_RESET_RATE_PER_EMAIL = per_email

    yield set_rates
    cache.clear()


def ask(email: str, *, ip: str = "203.0.113.5") -> Any:
    return Client(REMOTE_ADDR=ip).post(RESET, {"email": email})


def test_a_reset_request_answers_before_the_email_is_sent(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = ask("ADA@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []  # nothing was sent inside the request
    assert len(queued) == 1

    queued[0]()  # the task, run by the worker (eagerly here)
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    # The link's host is PUBLIC_BASE_URL's, whatever Host header the request carried.
    assert "http://testserver/accounts/reset/" in message.body


def test_the_answer_is_the_same_whether_or_not_an_account_has_the_address(
    user, django_capture_on_commit_callbacks
):
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        with django_capture_on_commit_callbacks(execute=True) as queued:
            response = ask(email)
        answers.append((response.status_code, response["Location"], len(queued)))
    assert answers[0] == answers[1] == (302, "/accounts/password_reset/done/", 1)
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_a_broker_outage_still_answers_the_same_page(user, monkeypatch):
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.send_password_reset, "delay", down)
    response = ask("ada@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"


def test_reset_requests_are_throttled_per_client_address(user, limits):
    limits(per_ip="2/hour")
    assert ask("a@example.com").status_code == 302
    assert ask("b@example.com").status_code == 302
    response = ask("ada@example.com")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many reset requests" in response.content.decode()
    assert ask("ada@example.com", ip="198.51.100.7").status_code == 302


def test_reset_requests_are_throttled_per_email_whatever_the_address(user, limits):
    limits(per_email="1/hour")
    for email in ("ada@example.com", "nobody@example.com"):
        assert ask(email, ip="203.0.113.5").status_code == 302
        # Same address, another case and network: refused, account or not.
        assert ask(email.upper(), ip="198.51.100.7").status_code == 429


def test_the_email_is_retried_when_smtp_fails_for_a_moment(user, settings):
    settings.EMAIL_BACKEND = "tests.mailbackends.FlakyBackend"
    FlakyBackend.errors = [smtplib.SMTPServerDisconnected("gone")]
    # throw=False: run the retry eagerly too, as a worker would run it later.
    result = tasks.send_password_reset.apply(("ada@example.com",), throw=False)
    assert result.successful()
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_the_email_is_not_retried_when_smtp_refuses_the_address(user, settings):
    settings.EMAIL_BACKEND = "tests.mailbackends.FlakyBackend"
    refused = smtplib.SMTPRecipientsRefused({"ada@example.com": (550, b"no such user")})
    FlakyBackend.errors = [refused, smtplib.SMTPServerDisconnected("must not be reached")]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        tasks.send_password_reset.delay("ada@example.com")
    assert len(FlakyBackend.errors) == 1
    FlakyBackend.errors = []


def test_the_worker_finds_the_reset_task():
    celery_app.loader.import_default_modules()
    assert "accounts.tasks.send_password_reset" in celery_app.tasks


def test_login_lockouts_behind_a_proxy_count_each_client_not_the_proxy(settings, user):
    """Behind one proxy every request comes from the proxy's address: counted by it, one
    stranger's failed logins would lock the tutor out from everywhere."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    def login(client_ip: str, password: str, *, spoofed: str = "") -> int:
        forwarded = f"{spoofed}, {client_ip}" if spoofed else client_ip
        client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": password}
        )
        return response.status_code

    for n in range(3):
        # What the client writes into X-Forwarded-For itself does not count.
        login("203.0.113.9", "wrong", spoofed=f"192.0.2.{n}")
    assert login("203.0.113.9", "pw-for-tests", spoofed="192.0.2.77") in (403, 429)
    assert login("198.51.100.7", "pw-for-tests") == 302
