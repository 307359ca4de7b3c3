"""The tutor's side in real Chromium: a new tutor from `createtutor` to bookable slots, the
availability page's forms, and axe with no violations (and no duplicate ids) anywhere."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from bookings import services
from bookings.models import BlockedPeriod, Slot, Tutor

from .conftest import axe_violations, confirm, has_horizontal_scroll, hold_slot, save_report

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 375
PASSWORD = "a-long-tutor-passphrase"

DUPLICATE_IDS = """() => {
  const seen = {};
  document.querySelectorAll('[id]').forEach(el => { seen[el.id] = (seen[el.id] || 0) + 1; });
  return Object.keys(seen).filter(id => seen[id] > 1);
}"""


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your sessions").wait_for()


def test_a_new_tutor_goes_from_createtutor_to_slots_students_can_book(open_page, monkeypatch):
    monkeypatch.setenv("DJANGO_TUTOR_PASSWORD", PASSWORD)
    call_command(
        "createtutor",
        interactive=False,
        email="lin@example.com",
        name="Lin Ortiz",
        slug="lin",
        timezone="America/Chicago",
        stdout=io.StringIO(),
    )
    page = open_page(None, width=PHONE, tz="America/Chicago")
    sign_in(page, "lin", PASSWORD)
    assert page.get_by_text("No sessions booked yet.").is_visible()

    page.get_by_role("link", name="Prices").click()
    page.get_by_label("Mode").select_option("remote")
    page.get_by_label("Title").fill("Python, one to one")
    page.get_by_label("Length (minutes)").fill("60")
    page.get_by_label("Price (USD)").fill("80")
    page.get_by_label("Video call link (remote)").fill("meet.example.com/lin")
    page.get_by_role("button", name="Add session type").click()
    page.get_by_text("Session type added.").wait_for()
    assert page.get_by_text("No slots yet: students cannot book it").is_visible()

    page.get_by_role("link", name="Availability").click()
    target = (timezone.now() + timedelta(days=3)).astimezone(Tutor.objects.get().zone).date()
    rule = page.locator("form[data-preview-form]")
    rule.get_by_label(target.strftime("%a"), exact=True).check()
    rule.get_by_label("From", exact=True).fill("09:00")
    rule.get_by_label("Until").fill("11:30")
    rule.get_by_label("Python, one to one").check()
    page.get_by_text("This rule creates").wait_for()
    rule.get_by_role("button", name="Save rule").click()
    page.get_by_role("heading", name="Your slots").wait_for()
    assert page.get_by_text("its last 30 minutes stay free").is_visible()
    assert page.get_by_text("9:00 AM–10:00 AM").first.is_visible()
    assert not has_horizontal_scroll(page)

    page.goto("/t/lin/?tz=America/Chicago")
    assert page.locator("a.slot").count() >= 2
    assert page.get_by_text("No open times in the next 8 weeks").count() == 0


def test_each_label_on_the_availability_page_ticks_its_own_form(open_page, tutor, remote):
    tutor.user.set_password(PASSWORD)
    tutor.user.save()
    page = open_page(None)
    sign_in(page, tutor.user.username, PASSWORD)
    page.goto("/tutor/availability/")
    one_off = page.locator("form[action='/tutor/availability/slots/']")
    rule = page.locator("form[data-preview-form]")
    one_off.get_by_text("Python (video)").click()  # the label, as a person clicks it
    assert one_off.get_by_label("Python (video)").is_checked()
    assert not rule.get_by_label("Python (video)").is_checked()

    day = (timezone.now() + timedelta(days=4)).astimezone(tutor.zone).date()
    one_off.get_by_label("Date").fill(day.isoformat())
    one_off.get_by_label("Starts at").fill("13:00")
    one_off.get_by_role("button", name="Add slot").click()
    page.get_by_text("One-off slot added.").wait_for()
    assert Slot.objects.filter(tutor=tutor).count() == 1


def test_axe_finds_nothing_on_any_tutor_page(open_page, tutor, future_slots, weekly_rule):
    slot, _free_to_move_to, third = future_slots(3, 4, 6)
    booking = confirm(hold_slot(slot))
    on_day_off = confirm(hold_slot(third, email="kim@example.com"))
    now = timezone.now()
    services.block_create(tutor=tutor, start=third.start, end=third.end, now=now)
    block = BlockedPeriod.objects.get()
    offering = tutor.offerings.first()
    tutor.user.set_password(PASSWORD)
    tutor.user.save()

    page = open_page(None, width=PHONE, bypass_csp=True)
    sign_in(page, tutor.user.username, PASSWORD)
    paths = [
        "/tutor/",
        "/tutor/?show=past",
        "/tutor/?show=cancelled&q=sam",
        "/tutor/?show=all&q=%00",  # a refused search, with its error summary
        f"/tutor/bookings/{booking.pk}/",
        f"/tutor/bookings/{booking.pk}/move/",
        f"/tutor/bookings/{on_day_off.pk}/",
        "/tutor/availability/",
        f"/tutor/availability/rules/{weekly_rule.pk}/",
        f"/tutor/availability/blocks/{block.pk}/",
        "/tutor/slots/",
        "/tutor/offerings/",
        f"/tutor/offerings/{offering.pk}/",
        "/tutor/settings/",
        "/tutor/calendars/",
    ]
    checked: dict[str, object] = {}
    for path in paths:
        response = page.goto(path)
        assert response.status == 200, path
        checked[path] = {
            "duplicate_ids": page.evaluate(DUPLICATE_IDS),
            "axe": axe_violations(page),
            "sideways": has_horizontal_scroll(page),
        }
    # Forms sent with errors, and the panels a booking page opens.
    page.goto("/tutor/availability/")
    page.locator("form[action='/tutor/availability/slots/']").get_by_role(
        "button", name="Add slot"
    ).click()
    page.locator(".error-summary").wait_for()
    checked["one-off slot with errors"] = {
        "duplicate_ids": page.evaluate(DUPLICATE_IDS),
        "axe": axe_violations(page),
    }
    page.goto(f"/tutor/bookings/{booking.pk}/")
    page.get_by_text(f"Ask {booking.student_name} to pick another time").click()
    page.get_by_text("Cancel this session").click()
    checked["booking with panels open"] = {
        "duplicate_ids": page.evaluate(DUPLICATE_IDS),
        "axe": axe_violations(page),
    }
    save_report("axe-tutor-pages.json", checked)
    problems = {
        path: found
        for path, found in checked.items()
        if any(found.values())  # type: ignore[attr-defined]
    }
    assert not problems, json.dumps(problems, indent=1)
