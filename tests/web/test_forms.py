"""Every page's forms: CSRF tokens on all POST forms, and a label on every field."""

from html.parser import HTMLParser

import pytest
from django.test import Client

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


class Forms(HTMLParser):
    """Collects POST forms (with or without a CSRF token) and unlabelled fields."""

    def __init__(self) -> None:
        super().__init__()
        self.post_forms: list[bool] = []
        self.labels: set[str] = set()
        self.fields: list[tuple[str, str]] = []  # (id, name)
        self.in_label = 0
        self.wrapped: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "get").lower() == "post":
            self.post_forms.append(False)
        if tag == "input" and a.get("name") == "csrfmiddlewaretoken" and self.post_forms:
            self.post_forms[-1] = True
        if tag == "label":
            self.in_label += 1
            if a.get("for"):
                self.labels.add(a["for"])
        if tag in ("input", "select", "textarea"):
            if a.get("type") in ("hidden", "submit", "button") or "hidden" in a:
                return
            if self.in_label:
                self.wrapped.add(a.get("id") or a.get("name") or "")
            self.fields.append((a.get("id") or "", a.get("name") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1

    def unlabelled(self) -> list[tuple[str, str]]:
        return [
            (i, n) for i, n in self.fields if i not in self.labels and (i or n) not in self.wrapped
        ]


@pytest.fixture
def pages(frozen, tutor, slot, weekly_rule, now) -> list[str]:
    confirmed = confirm(hold_slot(slot, now=now), now=now)
    return [
        "/t/ada/",
        "/t/ada/?view=list",
        f"/t/ada/book/?slot={slot.pk}",  # booked: the "just taken" variant
        f"/t/ada/book/?slot={weekly_rule.slots.first().pk}",
        confirmed.manage_path,
        f"{confirmed.manage_path}cancel/",
        f"{confirmed.manage_path}reschedule/",
        "/accounts/login/",
        "/tutor/",
        f"/tutor/bookings/{confirmed.pk}/",
        "/tutor/availability/",
        f"/tutor/availability/rules/{weekly_rule.pk}/",
        "/tutor/slots/",
        "/tutor/offerings/",
    ]


def test_every_post_form_carries_a_csrf_token_and_every_field_a_label(client, tutor, pages):
    client.force_login(tutor.user)
    forms = fields = 0
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        parser = Forms()
        parser.feed(response.content.decode())
        assert all(parser.post_forms), path
        assert parser.unlabelled() == [], path
        forms += len(parser.post_forms)
        fields += len(parser.fields)
    assert forms > 20 and fields > 40  # the parser did see them


@pytest.mark.parametrize(
    "path",
    ["/t/ada/book/", "/tutor/availability/", "/tutor/offerings/", "/accounts/login/"],
)
def test_posts_without_the_csrf_token_are_refused(frozen, tutor, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tutor.user)
    assert client.post(path, {}).status_code == 403


def test_cancelling_without_the_csrf_token_is_refused(frozen, slot, now):
    booking = confirm(hold_slot(slot, now=now), now=now)
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"{booking.manage_path}cancel/").status_code == 403
    booking.refresh_from_db()
    assert booking.status == "confirmed"
