"""Secret links are stored once: a random key per row, the link carries it signed
(bookings.tokens). Links made before signed links keep working by their digest."""

import hashlib
import secrets

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from bookings import services, tokens
from bookings.models import Booking, Tutor
from tests.conftest import hold

pytestmark = pytest.mark.django_db


def flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def test_a_manage_link_is_its_key_signed_and_finds_its_booking(api, frozen, slot):
    hold(api, slot)
    booking = Booking.objects.get()
    token = booking.manage_token
    assert len(token) == 65 and token[: tokens.KEY_LENGTH] == booking.manage_key
    assert api.get(f"/api/bookings/{token}/").status_code == 200
    assert api.get(f"/bookings/{token}/").status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda b: flip_last(b.manage_token), id="signature-one-character-off"),
        pytest.param(lambda b: b.manage_key, id="key-alone"),
        pytest.param(lambda b: b.manage_key + "x" * 43, id="key-with-a-made-up-signature"),
        pytest.param(lambda b: tokens.token_for("feed", b.manage_key), id="signed-for-the-feed"),
        pytest.param(lambda b: b.manage_token + "A", id="one-character-longer"),
        pytest.param(lambda b: b.manage_token[:43], id="legacy-length-prefix"),
    ],
)
def test_a_manage_link_that_is_not_exactly_right_finds_nothing(api, frozen, slot, bad):
    hold(api, slot)
    booking = Booking.objects.get()
    token = bad(booking)
    assert api.get(f"/api/bookings/{token}/").status_code == 404
    assert api.post(f"/api/bookings/{token}/cancel/", {}, format="json").status_code == 404


def test_a_feed_token_opens_only_the_feed_and_a_manage_token_only_its_booking(
    api, client, frozen, slot, tutor
):
    hold(api, slot)
    booking = Booking.objects.get()
    assert client.get(f"/calendar/{tutor.feed_token}.ics").status_code == 200
    assert client.get(f"/calendar/{booking.manage_token}.ics").status_code == 404
    assert api.get(f"/api/bookings/{tutor.feed_token}/").status_code == 404


def test_rotating_the_feed_kills_the_old_url_signed_or_legacy(client, tutor):
    legacy = secrets.token_urlsafe(32)
    Tutor.objects.filter(pk=tutor.pk).update(
        feed_legacy_digest=hashlib.sha256(legacy.encode()).hexdigest()
    )
    tutor.refresh_from_db()
    old = tutor.feed_token
    assert client.get(f"/calendar/{old}.ics").status_code == 200
    assert client.get(f"/calendar/{legacy}.ics").status_code == 200
    services.tutor_rotate_feed(tutor=tutor)
    tutor.refresh_from_db()
    assert tutor.feed_token != old and tutor.feed_legacy_digest is None
    assert client.get(f"/calendar/{old}.ics").status_code == 404
    assert client.get(f"/calendar/{legacy}.ics").status_code == 404
    assert client.get(f"/calendar/{tutor.feed_token}.ics").status_code == 200


def test_links_survive_a_secret_key_rotation_only_with_the_old_key_as_fallback(
    api, frozen, slot, settings
):
    hold(api, slot)
    booking = Booking.objects.get()
    token = booking.manage_token
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert api.get(f"/api/bookings/{token}/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert api.get(f"/api/bookings/{token}/").status_code == 404
    # Links made now carry the new key's signature.
    assert api.get(f"/api/bookings/{booking.manage_token}/").status_code == 200


@pytest.mark.parametrize(
    "token",
    ["", "a", "x" * 81, "abc.def", "ab/cd", "é" * 30, "a\x00" * 20, "%00" * 30, "0" * 65],
)
def test_malformed_tokens_find_nothing(api, client, token):
    assert api.get("/api/bookings/x/").status_code == 404  # the route exists
    assert not tokens.key_of("manage", token)
    assert client.get(f"/calendar/{token}.ics").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_links_already_emailed_working(tutor):
    """Rows made before 0012 held the token in plain text beside its digest. After
    the migration the plain token is gone, the digest finds the row, and the row also
    has a signed link of its own."""
    from django.core.management import call_command

    executor = MigrationExecutor(connection)
    executor.migrate([("bookings", "0011_busy_interval")])
    old_apps = executor.loader.project_state([("bookings", "0011_busy_interval")]).apps
    OldTutor = old_apps.get_model("bookings", "Tutor")
    feed = secrets.token_urlsafe(32)
    OldTutor.objects.filter(pk=tutor.pk).update(
        feed_token=feed, feed_token_digest=hashlib.sha256(feed.encode()).hexdigest()
    )
    try:
        call_command("migrate", "bookings", verbosity=0)
        from django.test import Client

        client = Client()
        row = Tutor.objects.get(pk=tutor.pk)
        assert row.feed_legacy_digest == hashlib.sha256(feed.encode()).hexdigest()
        assert len(row.feed_key) == tokens.KEY_LENGTH
        assert client.get(f"/calendar/{feed}.ics").status_code == 200
        assert client.get(f"/calendar/{row.feed_token}.ics").status_code == 200
        columns = {
            c.name
            for c in connection.introspection.get_table_description(
                connection.cursor(), "bookings_tutor"
            )
        }
        assert "feed_token" not in columns
    finally:
        call_command("migrate", verbosity=0)
