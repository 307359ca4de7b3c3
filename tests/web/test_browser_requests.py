"""Request a time, end to end in real Chromium on a phone: ask → the tutor accepts on
their page → the private link → pay (simulated checkout) → confirmed; axe on each page."""

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from bookings.models import Booking, BookingStatus, SlotSource, TimeRequest, TimeRequestStatus

from .conftest import axe_violations, has_horizontal_scroll, save_report, screenshot, text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 375


def serious(page) -> list[dict]:
    return [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]


def test_a_student_on_a_phone_requests_a_time_and_books_it_through_the_private_link(
    open_page, tutor, remote, in_person
):
    checked = {}
    berlin = ZoneInfo("Europe/Berlin")
    wanted = (timezone.now() + timedelta(days=3)).astimezone(berlin)
    wanted = wanted.replace(hour=18, minute=0, second=0, microsecond=0)

    page = open_page("/t/ada/", width=PHONE, tz="Europe/Berlin", bypass_csp=True)
    page.get_by_role("link", name="Ask Ada Park for another time").click()
    page.get_by_role("heading", name="Ask Ada Park for a time").wait_for()
    assert page.get_by_label("Your time zone").input_value() == "Europe/Berlin"
    checked["form"] = serious(page)
    assert not has_horizontal_scroll(page)

    # A first try without a name: the error sits beside the field, nothing is lost.
    page.get_by_label("Python (video)").check()
    page.get_by_label("Time 1").fill(wanted.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_role("button", name="Send request").click()
    page.locator(".error-summary").wait_for()
    checked["form with errors"] = serious(page)
    assert page.get_by_label("Email").input_value() == "sam@example.com"

    page.get_by_label("Your name").fill("Sam Student")
    page.get_by_label("A note for the tutor (optional)").fill("Pandas, please")
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("heading", name="Request sent").wait_for()
    checked["sent"] = serious(page)
    screenshot(page, "request-sent-phone")
    shown = text(page.locator(".request-times").inner_text())
    assert f"{wanted:%A, %B} {wanted.day}, {wanted.year} at 6:00 PM" in shown

    row = TimeRequest.objects.get()
    assert row.time_1 == wanted

    # The tutor accepts on their own page, on a phone too.
    user = tutor.user
    user.set_password("tutor-pass")
    user.save()
    desk = open_page("/accounts/login/", width=PHONE, bypass_csp=True)
    desk.get_by_label("Username").fill(user.username)
    desk.get_by_label("Password").fill("tutor-pass")
    desk.get_by_role("button", name="Sign in").click()
    desk.get_by_role("heading", name="Your sessions").wait_for()
    desk.get_by_role("link", name="Requests 1 waiting").click()
    desk.get_by_role("heading", name="Time requests").wait_for()
    checked["tutor requests"] = serious(desk)
    assert not has_horizontal_scroll(desk)
    desk.get_by_role("button", name="Accept").first.click()
    desk.get_by_text("Offered to Sam Student").wait_for()

    row.refresh_from_db()
    assert row.status == TimeRequestStatus.ACCEPTED
    assert row.slot is not None
    assert row.slot.source == SlotSource.PRIVATE

    # The private link, as the email carries it: the time in the student's zone.
    page.goto(row.offer_path)
    page.get_by_role("heading", name="Ada Park can meet you").wait_for()
    checked["offer"] = serious(page)
    assert not has_horizontal_scroll(page)
    when = text(page.locator(".summary-when").inner_text())
    assert when.startswith(f"{wanted:%A, %B} {wanted.day}, {wanted.year} at 6:00 PM")
    screenshot(page, "request-offer-phone")
    page.get_by_role("button", name="Hold and pay").click()
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("heading", name="Booking confirmed").wait_for()
    screenshot(page, "request-confirmed-phone")

    booking = Booking.objects.get()
    assert (booking.slot_id, booking.status) == (row.slot_id, BookingStatus.CONFIRMED)
    save_report("axe-request-pages.json", checked)
    assert {name: found for name, found in checked.items() if found} == {}, json.dumps(
        checked, indent=1
    )
