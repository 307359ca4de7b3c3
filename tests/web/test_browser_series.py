"""A weekly series, end to end in real Chromium on a 375 px phone: pick a time → repeat
weekly for 4 weeks → a taken week is named → leave it out → simulated checkout → pay →
the series page lists the 3 confirmed sessions; axe on each page. Also axe on the
package pages (the student's and the tutor's)."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking, BookingSeries, BookingStatus
from packages import services as package_services
from payments import services as payment_services

from .conftest import axe_violations, confirm, has_horizontal_scroll, hold_slot, save_report

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 375


def serious(page) -> list[dict]:
    """Axe violations of consequence, and any duplicate id."""
    found = axe_violations(page)
    return [v for v in found if v["impact"] in ("serious", "critical") or "duplicate-id" in v["id"]]


def test_a_student_on_a_phone_books_four_weeks_leaves_out_a_taken_one_and_pays_once(
    open_page, future_slots
):
    checked = {}
    weeks = future_slots(3, 10, 17, 24)
    taken = confirm(hold_slot(weeks[2], email="kim@example.com"))  # week 3: someone else's

    page = open_page("/t/ada/", width=PHONE, bypass_csp=True)
    page.locator("a.slot").first.click()
    page.get_by_role("heading", name="Repeat weekly").wait_for()
    checked["book"] = serious(page)
    page.get_by_role("link", name="Book this time every week").click()
    page.get_by_role("heading", name="Book this time every week").wait_for()
    checked["series form"] = serious(page)
    assert not has_horizontal_scroll(page)

    page.get_by_label(re.compile(r"^Number of weeks")).fill("4")
    page.get_by_label(re.compile(r"Remote \(video\)")).check()
    page.get_by_label("Your name").fill("Sam Student")
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_role("button", name="Continue to payment").click()

    page.get_by_role("heading", name="Some weeks cannot be booked").wait_for()
    checked["series conflicts"] = serious(page)
    assert not has_horizontal_scroll(page)
    dropped = page.get_by_role("checkbox", name=re.compile(r"^Week 3:"))
    assert dropped.is_checked()
    assert page.get_by_text("3 sessions × $90.00 = $270.00").is_visible()
    assert not BookingSeries.objects.exists()  # all or nothing: nothing held yet

    page.get_by_role("button", name="Hold the other 3 weeks").click()
    page.wait_for_url(re.compile(r"/payments/simulated/"))
    checked["checkout"] = serious(page)
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("heading", name="Booking confirmed").wait_for()
    checked["first session"] = serious(page)

    page.get_by_role("link", name="See every session of the series").click()
    page.get_by_role("heading", name="Your weekly series").wait_for()
    checked["series page"] = serious(page)
    assert not has_horizontal_scroll(page)
    rows = page.locator("#sessions li")
    assert rows.count() == 3
    assert page.locator('#sessions li[data-status="confirmed"]').count() == 3
    assert page.get_by_role("link", name="Add the series to your calendar (.ics)").is_visible()

    page.get_by_role("link", name="Cancel the remaining sessions").click()
    page.get_by_role("heading", name="Cancel the remaining sessions?").wait_for()
    checked["series cancel"] = serious(page)
    assert not has_horizontal_scroll(page)

    series = BookingSeries.objects.get()
    held = Booking.objects.filter(series=series).order_by("series_week")
    assert [(b.series_week, b.status) for b in held] == [
        (1, BookingStatus.CONFIRMED),
        (2, BookingStatus.CONFIRMED),
        (4, BookingStatus.CONFIRMED),
    ]
    assert [b.slot_id for b in held] == [weeks[0].pk, weeks[1].pk, weeks[3].pk]
    taken.refresh_from_db()
    assert taken.status == BookingStatus.CONFIRMED
    save_report("axe-series-pages.json", checked)
    assert {name: found for name, found in checked.items() if found} == {}, json.dumps(
        checked, indent=1
    )


def test_axe_finds_no_serious_problems_on_the_package_pages(open_page, tutor, remote):
    package = package_services.package_create(
        tutor=tutor, offering=remote, sessions=5, price_amount=40000, valid_days=183
    )
    now = timezone.now()
    start = package_services.purchase_start(
        package_id=package.pk, student_name="Sam Student", student_email="sam@example.com", now=now
    )
    payment_services.simulated_pay(payment=start.purchase.payment, now=now)
    purchase = start.purchase
    user = tutor.user
    user.set_password("tutor-pass")
    user.save()

    checked = {}
    page = open_page("/t/ada/packages/", width=PHONE, bypass_csp=True)
    checked["on sale"] = serious(page)
    assert not has_horizontal_scroll(page)
    assert page.goto(purchase.path).ok
    checked["purchase"] = serious(page)
    assert not has_horizontal_scroll(page)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("tutor-pass")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your sessions").wait_for()
    for name, path in {
        "tutor packages": "/tutor/packages/",
        "tutor package": f"/tutor/packages/{package.pk}/",
        "tutor purchase": f"/tutor/packages/purchases/{purchase.pk}/",
    }.items():
        assert page.goto(path).ok, name
        checked[name] = serious(page)
        assert not has_horizontal_scroll(page), name
    save_report("axe-package-pages.json", checked)
    assert {name: found for name, found in checked.items() if found} == {}, json.dumps(
        checked, indent=1
    )


def test_a_series_page_for_a_hold_not_yet_paid_offers_the_checkout(open_page, future_slots):
    from bookings import series as series_service

    first, _ = future_slots(3, 10)
    hold = series_service.series_hold(
        slot_id=first.pk,
        mode="remote",
        weeks=2,
        student_name="Sam Student",
        student_email="sam@example.com",
        now=timezone.now() - timedelta(seconds=1),
    )
    page = open_page(f"/series/{hold.series.manage_token}/", width=PHONE, bypass_csp=True)
    page.get_by_role("heading", name="Your weekly series").wait_for()
    assert page.get_by_role("link", name="Continue to payment").is_visible()
    assert serious(page) == []
