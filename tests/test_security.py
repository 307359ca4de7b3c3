"""Hostile input and abuse: throttles, body limits, secrets, brute force, headers."""

import logging
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client

from bookings.models import Booking
from tests.conftest import hold, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Turn the throttles on (tests run with them off) at small rates."""
    cache.clear()

    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"holds_ip": None, "holds_email": None,
                                       "manage_ip": None, **rates},
        }  # fmt: skip

    yield set_rates
    cache.clear()


def test_holds_are_throttled_per_ip_with_retry_after(api, frozen, tutor, remote, now, rates):
    rates(holds_ip="2/min")
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (1, 2, 3)]
    assert hold(api, slots[0], email="a@example.com").status_code == 201
    assert hold(api, slots[1], email="b@example.com").status_code == 201
    response = hold(api, slots[2], email="c@example.com")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert Booking.objects.count() == 2


def test_holds_are_throttled_per_email_whatever_the_ip(tutor, remote, now, frozen, rates):
    rates(holds_email="1/hour")
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (1, 2)]
    first = Client(REMOTE_ADDR="10.0.0.1")
    second = Client(REMOTE_ADDR="10.0.0.2")
    body = {"mode": "remote", "student_name": "S", "student_email": "Same@example.com"}
    response = first.post("/api/bookings/", {**body, "slot": slots[0].pk},
                          content_type="application/json")  # fmt: skip
    assert response.status_code == 201
    response = second.post(
        "/api/bookings/",
        {**body, "slot": slots[1].pk, "student_email": "same@EXAMPLE.com"},
        content_type="application/json",
    )
    assert response.status_code == 429
    assert "Retry-After" in response


def test_manage_link_lookups_are_throttled_per_ip(api, frozen, rates):
    rates(manage_ip="3/min")
    statuses = [api.get(f"/api/bookings/{'x' * 43}/").status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]


def test_an_oversized_body_is_refused_with_413_before_parsing(api, frozen):
    response = api.generic(
        "POST", "/api/bookings/", b"{" + b" " * (300 * 1024) + b"}",
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_manage_tokens_are_signed_and_not_stored(api, frozen, slot):
    hold(api, slot)
    booking = Booking.objects.get()
    token = booking.manage_token
    assert len(token) == 65 and token.startswith(booking.manage_key)
    assert booking.manage_legacy_digest is None
    row = Booking.objects.filter(pk=booking.pk).values().get()
    assert not [name for name, value in row.items() if isinstance(value, str) and token in value]
    # A token that differs only in its last character finds nothing.
    near = booking.manage_token[:-1] + ("A" if booking.manage_token[-1] != "A" else "B")
    assert api.get(f"/api/bookings/{near}/").status_code == 404


def test_admin_login_locks_out_after_repeated_failures(settings, tutor):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        response = client.post(
            "/admin/login/", {"username": tutor.user.username, "password": "wrong"}
        )
    assert response.status_code in (403, 429)
    # Even the right password is refused now, for this username from this address.
    response = client.post(
        "/admin/login/", {"username": tutor.user.username, "password": "pw-for-tests"}
    )
    assert response.status_code in (403, 429)


def test_responses_carry_a_content_security_policy(client):
    response = client.get("/api/docs/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self' https://js.stripe.com" in policy
    assert "unsafe-inline" not in policy


def test_secrets_in_paths_never_reach_the_logs(api, frozen, slot, caplog):
    hold(api, slot)
    token = Booking.objects.get().manage_token
    with caplog.at_level(logging.INFO):
        api.get(f"/api/bookings/{token}/")
        api.get(f"/api/bookings/{token}x/")  # a 404 is logged by django.request too
    text = "\n".join(h.format(r) for r in caplog.records for h in logging.getLogger().handlers)
    assert caplog.records
    assert token not in text
    assert "/api/bookings/[redacted]/" in text
