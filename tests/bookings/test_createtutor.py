"""`manage.py createtutor`: a tutor who can sign in and use their pages and the admin."""

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from bookings.models import Tutor

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-tutor-passphrase"


def create(**options: Any) -> str:
    out = io.StringIO()
    call_command("createtutor", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DJANGO_TUTOR_PASSWORD", PASSWORD)
    return PASSWORD


ADA = {
    "email": "Ada@Example.com",
    "name": "Ada Park",
    "slug": "ada",
    "timezone": "America/New_York",
    "interactive": False,
}


def test_a_new_tutor_signs_in_and_finds_their_pages(client, password):
    out = create(**ADA)
    assert "Tutor Ada Park created; they sign in as 'ada'." in out
    assert "/tutor/offerings/" in out and "/t/ada/" in out
    tutor = Tutor.objects.select_related("user").get()
    assert (tutor.slug, tutor.display_name, tutor.email) == ("ada", "Ada Park", "ada@example.com")
    assert (tutor.timezone, tutor.currency) == ("America/New_York", "usd")
    assert tutor.user.is_staff and not tutor.user.is_superuser
    assert [g.name for g in tutor.user.groups.all()] == ["Tutors"]

    assert client.login(username="ada", password=PASSWORD)
    page = client.get("/tutor/")
    assert page.status_code == 200 and b"Your sessions" in page.content
    for path in ("/tutor/offerings/", "/tutor/availability/", "/tutor/slots/", "/tutor/settings/"):
        assert client.get(path).status_code == 200, path
    # The admin works for them too, with the group's permissions.
    assert client.get("/admin/bookings/booking/").status_code == 200
    assert client.get("/admin/bookings/offering/add/").status_code == 200


def test_the_details_can_come_from_the_environment(monkeypatch, password):
    monkeypatch.setenv("DJANGO_TUTOR_EMAIL", "bo@example.com")
    monkeypatch.setenv("DJANGO_TUTOR_NAME", "Bo Chen")
    monkeypatch.setenv("DJANGO_TUTOR_SLUG", "bo")
    monkeypatch.setenv("DJANGO_TUTOR_TIMEZONE", "Europe/Berlin")
    create(interactive=False, username="bo-chen", currency="EUR")
    tutor = Tutor.objects.get()
    assert (tutor.user.username, tutor.slug, tutor.currency) == ("bo-chen", "bo", "eur")


def test_without_a_password_the_account_waits_for_one(client):
    out = create(**ADA)
    assert "changepassword ada" in out
    user = get_user_model().objects.get()
    assert not user.has_usable_password()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not an address"}, "email: Enter a valid email address."),
        ({"name": "Ada\x1b[31m"}, "name: Remove the invisible control character U+001B."),
        ({"name": "x" * 121}, "name: At most 120 characters, please."),
        ({"slug": "Ada Park"}, "slug: Enter a valid “slug”"),
        ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is not an IANA time zone."),
        ({"timezone": ""}, "timezone: required."),
        ({"currency": "dollars"}, "currency: Use a lower-case ISO 4217 code"),
    ],
)
def test_bad_details_are_refused_and_nothing_is_made(password, change, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        create(**{**ADA, **change})
    assert not Tutor.objects.exists()
    assert not get_user_model().objects.exists()


def test_a_taken_slug_or_username_is_refused(password):
    create(**ADA)
    with pytest.raises(CommandError, match=re.escape("/t/ada/ belongs to another tutor already.")):
        create(**{**ADA, "email": "other@example.com"})
    with pytest.raises(CommandError, match="username: 'ada' is taken"):
        create(**{**ADA, "slug": "ada-2", "username": "ada"})
    assert Tutor.objects.count() == 1


def test_a_weak_password_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("DJANGO_TUTOR_PASSWORD", "123")
    with pytest.raises(CommandError, match="password: This password is too short"):
        create(**ADA)
    assert not Tutor.objects.exists()


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the person types at the prompts, in order (getpass included)."""
    answers: list[str] = []

    def answer(prompt: str = "") -> str:
        return answers.pop(0)

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("getpass.getpass", answer)
    yield answers
    assert answers == []  # every prompt was asked


def test_interactively_it_asks_again_until_the_answers_make_sense(typed):
    typed += [
        "ada@example.com",
        "Ada Park",
        "ada",
        "New York",  # not a zone: asked again
        "America/New_York",
        PASSWORD,
        "a different one",  # the second password differs: asked again
        "short",
        "short",  # too short: asked again
        PASSWORD,
        PASSWORD,
    ]
    err = io.StringIO()
    call_command("createtutor", stdout=io.StringIO(), stderr=err)
    assert "timezone: 'New York' is not an IANA time zone." in err.getvalue()
    assert "the two passwords differ" in err.getvalue()
    assert "This password is too short" in err.getvalue()
    user = get_user_model().objects.get()
    assert user.check_password(PASSWORD)
    assert user.tutor.timezone == "America/New_York"
