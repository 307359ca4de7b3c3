"""End to end in real Chromium against the live server: book, pay, cancel, zones, tutor."""

import io
import json
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from bookings import services
from bookings.models import Booking, BookingStatus, Slot, Tutor
from payments.models import Refund

from .conftest import (
    axe_violations,
    confirm,
    has_horizontal_scroll,
    hold_slot,
    save_report,
    screenshot,
    text,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 375


def book_first_slot(page, *, mode_filter: str, name: str, email: str) -> None:
    """On the tutor page: filter by mode, take the first open time, fill in, go to pay."""
    page.get_by_label(mode_filter).check()
    page.locator("a.slot").first.click()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("What do you want to work on?").fill("Pandas groupby")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(re.compile(r"/payments/simulated/"))


def test_a_student_on_a_phone_books_and_pays_for_remote_then_in_person(open_page, future_slots):
    first, second = future_slots(3, 5)
    page = open_page("/", width=PHONE)
    assert page.url.endswith("/t/ada/")
    screenshot(page, "tutor-page-phone")

    book_first_slot(page, mode_filter="Remote (video)", name="Sam", email="sam@example.com")
    screenshot(page, "simulated-checkout-phone")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("heading", name="Booking confirmed").wait_for()
    screenshot(page, "confirmed-remote-phone")
    assert page.get_by_text("https://meet.example.com/room").is_visible()
    invite = page.get_by_role("link", name="Add to calendar (.ics)")
    ics = page.request.get(invite.get_attribute("href"))
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text()
    assert not has_horizontal_scroll(page)

    page.goto("/t/ada/")
    book_first_slot(page, mode_filter="In person (NYC)", name="Sam", email="sam@example.com")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("heading", name="Booking confirmed").wait_for()
    assert page.get_by_text("40 W 40th St, New York, NY 10018").is_visible()

    bookings = Booking.objects.order_by("slot__start")
    assert [(b.mode, b.status, b.slot_id) for b in bookings] == [
        ("remote", BookingStatus.CONFIRMED, first.pk),
        ("in_person", BookingStatus.CONFIRMED, second.pk),
    ]


def test_a_student_cancels_from_the_manage_link_and_sees_the_refund(open_page, future_slots):
    (slot,) = future_slots(3)
    booking = confirm(hold_slot(slot))
    page = open_page(booking.manage_path, width=PHONE)
    page.get_by_role("link", name="Cancel session").click()
    assert page.get_by_text("You get a full refund of $90.").is_visible()
    screenshot(page, "cancel-phone")
    page.get_by_role("button", name="Yes, cancel my session").click()
    page.get_by_role("heading", name="Booking cancelled").wait_for()
    assert page.get_by_text("$90.00 is on its way back to your card.").is_visible()
    screenshot(page, "cancelled-phone")

    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert booking.refund_amount == 9000
    assert Refund.objects.get().amount == 9000


def test_a_student_in_tokyo_sees_the_times_in_tokyo(open_page, future_slots):
    (slot,) = future_slots(3, hour=15)  # 15:00 UTC is midnight in Tokyo: the next day
    tokyo = slot.start.astimezone(ZoneInfo("Asia/Tokyo"))
    new_york = slot.start.astimezone(ZoneInfo("America/New_York"))

    page = open_page("/t/ada/", tz="Asia/Tokyo")
    assert page.get_by_label("Time zone").input_value() == "Asia/Tokyo"
    assert "Asia/Tokyo (detected from your browser)" in text(page.locator("#tz-hint").inner_text())
    heading = text(page.locator("[data-day-heading]").inner_text())
    assert heading == f"{tokyo:%A}, {tokyo:%B} {tokyo.day}"
    slot_text = text(page.locator("a.slot").first.inner_text())
    assert slot_text.startswith("12:00 AM – 1:00 AM")
    screenshot(page, "tutor-page-tokyo")

    # Changing the zone re-renders the same slot on the New York day and time.
    page.get_by_label("Time zone").select_option("America/New_York")
    heading = text(page.locator("[data-day-heading]").inner_text())
    assert heading == f"{new_york:%A}, {new_york:%B} {new_york.day}"
    hour = new_york.strftime("%I:%M %p").lstrip("0")
    assert text(page.locator("a.slot").first.inner_text()).startswith(hour)

    # The booking form carries the chosen zone and shows the time in it.
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.locator("a.slot").first.click()
    when = text(page.locator(".summary-when").inner_text())
    assert when.startswith(f"{tokyo:%A}, {tokyo:%B} {tokyo.day}, {tokyo.year} at 12:00 AM")
    assert "(Asia/Tokyo)" in when
    assert page.locator("input[name=student_timezone]").input_value() == "Asia/Tokyo"


def test_the_tutor_adds_a_weekly_rule_and_sees_the_new_slots(open_page, tutor, remote):
    user = tutor.user
    user.set_password("tutor-pass")
    user.save()
    target = (timezone.now() + timedelta(days=3)).astimezone(tutor.zone).date()
    page = open_page("/tutor/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("tutor-pass")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your sessions").wait_for()

    page.get_by_role("link", name="Availability").click()
    form = page.locator("form[data-preview-form]")
    form.get_by_label(target.strftime("%a"), exact=True).check()
    form.get_by_label("From", exact=True).fill("07:00")
    form.get_by_label("Until").fill("09:00")
    form.get_by_label("Python (video)").check()
    page.get_by_text("This rule creates").wait_for()  # the live preview
    screenshot(page, "tutor-availability")
    assert not Slot.objects.exists()  # a preview writes nothing

    form.get_by_role("button", name="Save rule").click()
    page.get_by_role("heading", name="Your slots").wait_for()
    assert page.get_by_text("Rule saved.").is_visible()
    day = page.get_by_role("heading", name=f"{target:%A}, {target:%B} {target.day}")
    assert day.is_visible()
    assert page.get_by_text("7:00 AM–8:00 AM").first.is_visible()
    assert page.get_by_text("8:00 AM–9:00 AM").first.is_visible()
    screenshot(page, "tutor-slots")
    first = Slot.objects.order_by("start").first()
    assert first is not None
    assert first.start == datetime.combine(target, time(7), tutor.zone).astimezone(UTC)

    # The public page offers them too.
    page.goto(f"/t/{tutor.slug}/?tz={tutor.timezone}")
    assert page.locator("a.slot").count() >= 2


def test_the_student_pages_fit_a_375px_phone_without_sideways_scrolling(open_page, future_slots):
    slot, other, free = future_slots(3, 4, 5)
    confirmed = confirm(hold_slot(slot))
    held = hold_slot(other, email="kim@example.com")
    paths = {
        "tutor": "/t/ada/",
        "book": f"/t/ada/book/?slot={other.pk}",
        "manage-confirmed": confirmed.manage_path,
        "manage-pending": held.manage_path,
        "cancel": f"{confirmed.manage_path}cancel/",
        "reschedule": f"{confirmed.manage_path}reschedule/",
        "login": "/accounts/login/",
    }
    page = open_page("/", width=PHONE, height=740)
    for name, path in paths.items():
        page.goto(path)
        assert not has_horizontal_scroll(page), name
        screenshot(page, f"{name}-phone")
    page.goto(f"/t/ada/book/?slot={free.pk}")
    page.get_by_role("button", name="Continue to payment").click()
    page.locator(".error-summary").wait_for()
    assert not has_horizontal_scroll(page)
    screenshot(page, "book-errors-phone")


def test_axe_finds_no_serious_problems_on_the_student_pages(open_page, future_slots):
    slot, other, third = future_slots(3, 4, 5)
    confirmed = confirm(hold_slot(slot))
    held = hold_slot(other, email="kim@example.com")
    cancelled = confirm(hold_slot(third, email="lee@example.com"))
    services.booking_cancel(booking_id=cancelled.pk, actor="student", now=timezone.now())
    page = open_page("/t/ada/", width=PHONE, bypass_csp=True)
    checked = {}
    for path in [
        "/t/ada/",
        "/t/ada/?view=list",
        f"/t/ada/book/?slot={third.pk}",
        f"/t/ada/book/?slot={other.pk}",  # held by someone else: the "just taken" page
        confirmed.manage_path,
        held.manage_path,
        cancelled.manage_path,
        f"{confirmed.manage_path}cancel/",
        f"{confirmed.manage_path}reschedule/",
        "/accounts/login/",
    ]:
        page.goto(path)
        checked[path] = axe_violations(page)
    page.goto(f"/t/ada/book/?slot={third.pk}")
    page.get_by_role("button", name="Continue to payment").click()
    page.locator(".error-summary").wait_for()
    checked["booking form with errors"] = axe_violations(page)
    save_report("axe-student-pages.json", checked)
    serious = {
        path: [v for v in found if v["impact"] in ("serious", "critical")]
        for path, found in checked.items()
    }
    problems = {path: found for path, found in serious.items() if found}
    assert not problems, json.dumps(problems, indent=1)


def test_the_tutor_page_weighs_under_100_kb_and_needs_no_request_per_slot(open_page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    tutor = Tutor.objects.get()
    assert Slot.objects.filter(tutor=tutor).count() > 60  # eight weeks of demo slots

    page = open_page(None, width=PHONE)
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto("/t/ada/")
    page.locator("a.slot").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("button", name="Next month").is_visible()  # the month calendar
    assert sorted(r.url.removeprefix(live_server.url) for r in responses) == [
        "/static/bookings/site.css",
        "/static/bookings/site.js",
        "/t/ada/",
    ]
    weights = {r.url.removeprefix(live_server.url): len(r.body()) for r in responses}
    save_report("tutor-page-weight.json", weights)
    assert sum(weights.values()) < 100_000


def test_a_held_booking_page_turns_confirmed_by_itself_when_payment_arrives(
    open_page, future_slots
):
    (slot,) = future_slots(3)
    booking = hold_slot(slot)
    page = open_page(booking.manage_path)
    page.get_by_role("heading", name="Payment pending").wait_for()
    assert page.get_by_role("link", name="Continue to payment").is_visible()
    confirm(booking)
    page.get_by_role("heading", name="Booking confirmed").wait_for(timeout=15_000)


def test_the_login_page_signs_a_tutor_in_and_out(open_page, tutor):
    user = tutor.user
    user.set_password("tutor-pass")
    user.save()
    page = open_page("/accounts/login/", width=PHONE)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator(".error-summary").is_visible()
    page.get_by_label("Password").fill("tutor-pass")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your sessions").wait_for()
    screenshot(page, "tutor-dashboard-phone")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/t/ada/$"))
    assert get_user_model().objects.get(pk=user.pk).last_login is not None


def test_the_picker_works_from_the_keyboard(open_page, future_slots):
    _, second = future_slots(3, 4)
    page = open_page("/t/ada/")
    later_day = page.locator(".days button:not([disabled])").nth(1)
    later_day.focus()
    page.keyboard.press("Enter")
    # The day list is redrawn; focus stays on the day just chosen.
    focused = page.evaluate("() => document.activeElement.getAttribute('aria-pressed')")
    assert focused == "true"
    page.keyboard.press("Tab")
    href = page.evaluate("() => document.activeElement.getAttribute('href')")
    assert f"slot={second.pk}" in href
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Book a session with Ada Park").wait_for()
    page.get_by_label("Remote (video)").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # the second mode radio is in the same group: Tab leaves it
    assert page.evaluate("() => document.activeElement.name") == "student_name"


def test_axe_finds_no_serious_problems_on_the_tutor_pages(open_page, tutor, future_slots):
    (slot,) = future_slots(3)
    booking = confirm(hold_slot(slot))
    user = tutor.user
    user.set_password("tutor-pass")
    user.save()
    page = open_page("/accounts/login/", width=PHONE, bypass_csp=True)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("tutor-pass")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your sessions").wait_for()
    checked = {}
    for path in [
        "/tutor/",
        f"/tutor/bookings/{booking.pk}/",
        "/tutor/availability/",
        "/tutor/slots/",
        "/tutor/offerings/",
    ]:
        page.goto(path)
        assert not has_horizontal_scroll(page), path
        checked[path] = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
    assert {path: found for path, found in checked.items() if found} == {}
