"""The student's side of issue 12 in real Chromium, on a 375 px phone in three zones:
the month calendar over the whole horizon, the cancellation deadline where it bites, the
hold's countdown, add-to-calendar links, the checkout's formats, the in-person place's
New York time, and the time zone picker. Axe (duplicate-id included) stays clean."""

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from bookings import zones
from bookings.models import Booking, BookingStatus
from payments.models import Payment
from tests.conftest import make_slot

from .conftest import axe_violations, confirm, has_horizontal_scroll, hold_slot, screenshot, text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 375
ZONES = ["America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata"]


def clean_axe(page) -> None:
    """No axe violation of consequence, and never a duplicate id."""
    found = axe_violations(page)
    bad = [v for v in found if v["impact"] in ("serious", "critical") or "duplicate-id" in v["id"]]
    assert not bad, json.dumps(bad, indent=1)


def day_button(page, moment, zone: str):
    local = moment.astimezone(ZoneInfo(zone))
    name = re.compile(rf"^{local.day} ?, {local:%A}, {local:%B} {local.day}, ")
    return page.locator("[data-days]").get_by_role("button", name=name)


def show_month_of(page, moment, zone: str) -> None:
    """Step the calendar forward to the month `moment` falls in (in `zone`)."""
    local = moment.astimezone(ZoneInfo(zone))
    wanted = f"{local:%B} {local.year}"
    for _ in range(4):
        if page.locator("[data-month]").inner_text() == wanted:
            return
        page.get_by_role("button", name="Next month").click()
    assert page.locator("[data-month]").inner_text() == wanted


@pytest.mark.parametrize("zone", ZONES)
def test_a_student_books_in_person_from_the_calendar_and_every_page_agrees(
    open_page, future_slots, zone
):
    (slot,) = future_slots(4)
    page = open_page("/t/ada/", width=PHONE, height=800, tz=zone, bypass_csp=True)
    clean_axe(page)
    show_month_of(page, slot.start, zone)
    day_button(page, slot.start, zone).click()
    page.locator("a.slot").first.click()

    # The form: the time in the student's zone, the exact free-cancellation deadline.
    page.get_by_role("heading", name="Book a session with Ada Park").wait_for()
    deadline = zones.when(slot.start - timedelta(hours=24), zone, short=True)
    assert f"Free cancellation until {deadline}" in text(page.locator("[data-policy]").inner_text())
    form_when = text(page.locator(".summary-when").inner_text())
    assert f"({zone.replace('_', ' ')})" in form_when
    page.get_by_label("In person (NYC)").check()
    page.get_by_label("Your name").fill("Sam")
    page.get_by_label("Email").fill("sam@example.com")
    clean_axe(page)
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(re.compile(r"/payments/simulated/"))

    # Checkout: the same time and price as the form, the deadline, the hold.
    details = page.locator(".details").first
    assert text(details.locator("dd").first.inner_text()) == form_when
    assert "$120.00" in text(details.inner_text())
    assert page.get_by_role("button", name="Pay $120.00").is_visible()
    assert f"Free cancellation until {deadline}" in text(page.locator("[data-policy]").inner_text())
    hold = text(page.locator("[data-hold]").inner_text())
    assert re.search(
        r"Held for you until .+ \(" + zone.replace("_", " ") + r"\), \d+:\d\d left", hold
    )
    # In person: the place with its map, and its New York time for a student elsewhere.
    new_york = slot.start.astimezone(ZoneInfo("America/New_York"))
    place = text(page.locator("dd", has=page.locator("[data-place]")).inner_text())
    assert "Bryant Park Cafe" in place and "New York time" in place
    assert f"{new_york:%I:%M %p}".lstrip("0") in place
    osm = page.get_by_role("link", name="map of Bryant Park Cafe")
    assert osm.get_attribute("href").startswith("https://www.openstreetmap.org/search?query=")
    assert not has_horizontal_scroll(page)
    clean_axe(page)
    screenshot(page, f"checkout-{zone.replace('/', '-')}")
    page.get_by_role("button", name="Pay $120.00").click()

    # Confirmation: deadline, calendar links, the place's time.
    page.get_by_role("heading", name="Booking confirmed").wait_for()
    assert f"Free cancellation until {deadline}" in text(page.locator("[data-policy]").inner_text())
    assert "New York time" in text(page.locator("[data-place-time]").inner_text())
    google = page.get_by_role("link", name=re.compile("^Google Calendar"))
    outlook = page.get_by_role("link", name=re.compile("^Outlook.com"))
    booking = Booking.objects.get()
    for link in (google, outlook):
        assert booking.manage_token not in link.get_attribute("href")
    assert not has_horizontal_scroll(page)
    clean_axe(page)
    screenshot(page, f"confirmed-{zone.replace('/', '-')}")


def test_the_calendar_reaches_the_end_of_the_horizon_without_a_request_per_slot(
    open_page, future_slots, live_server
):
    _, far = future_slots(2, 50)
    requests: list[str] = []
    page = open_page(None, width=PHONE, tz="Europe/Berlin", bypass_csp=True)
    page.on("request", lambda r: requests.append(r.url.removeprefix(live_server.url)))
    page.goto("/t/ada/")
    assert page.get_by_role("button", name="Previous month").is_disabled()
    show_month_of(page, far.start, "Europe/Berlin")
    day_button(page, far.start, "Europe/Berlin").click()
    assert f"slot={far.pk}" in page.locator("a.slot").first.get_attribute("href")
    # The calendar stops at the month of the horizon's last day (today + 55 days).
    last = timezone.now().astimezone(ZoneInfo("Europe/Berlin")) + timedelta(days=55)
    show_month_of(page, last, "Europe/Berlin")
    assert page.get_by_role("button", name="Next month").is_disabled()
    page.get_by_role("button", name="Previous month").click()
    clean_axe(page)
    # Every month came from the data embedded in the page.
    assert sorted(set(requests)) == [
        "/static/bookings/site.css",
        "/static/bookings/site.js",
        "/t/ada/",
    ]


def test_a_slot_inside_the_refund_window_is_marked_on_the_calendar_and_the_form(
    open_page, tutor, remote, in_person
):
    start = (timezone.now() + timedelta(hours=18)).replace(minute=0, second=0, microsecond=0)
    late = make_slot(tutor, start, remote=remote, in_person=in_person)
    page = open_page("/t/ada/", width=PHONE, tz="Asia/Kolkata", bypass_csp=True)
    show_month_of(page, late.start, "Asia/Kolkata")
    day_button(page, late.start, "Asia/Kolkata").click()
    slot = page.locator("a.slot").first
    assert "No free cancellation" in slot.inner_text()
    slot.click()
    policy = text(page.locator("[data-policy]").inner_text())
    assert "This time is inside the 24-hour window: cancelling will not be refunded" in policy
    clean_axe(page)


def test_the_checkout_counts_the_hold_down_and_says_when_it_has_expired(open_page, future_slots):
    (slot,) = future_slots(3)
    booking = hold_slot(slot)
    payment = Payment.objects.get(booking=booking)
    page = open_page(None, width=PHONE, tz="America/Los_Angeles", bypass_csp=True)
    page.clock.install(time=timezone.now())
    page.goto(f"/payments/simulated/{payment.pk}/")
    hold = page.locator("[data-hold]")
    assert booking.hold_expires_at is not None
    until = booking.hold_expires_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert f"Held for you until {until:%I:%M %p}".replace(" 0", " ") in text(hold.inner_text())
    assert re.search(r", (29|30):\d\d left", text(hold.inner_text()))
    page.clock.fast_forward("31:00")
    expired = page.get_by_text("Your hold has expired")
    expired.wait_for()
    assert page.get_by_role("button", name=re.compile("^Pay")).is_hidden()
    again = page.get_by_role("link", name="Pick a time again")
    href = urlsplit(again.get_attribute("href"))
    assert (href.path, parse_qs(href.query)) == ("/t/ada/", {"tz": ["America/Los_Angeles"]})
    clean_axe(page)
    again.click()
    page.get_by_role("heading", name="Open times").wait_for()


def test_the_pending_page_counts_the_hold_down_too(open_page, future_slots):
    (slot,) = future_slots(3)
    booking = hold_slot(slot)
    page = open_page(booking.manage_path, width=PHONE, tz="Europe/Berlin")
    assert re.search(
        r"Held for you until .+, \d+:\d\d left", text(page.locator("[data-hold]").inner_text())
    )


def test_the_confirmation_offers_google_and_outlook_links_in_utc(open_page, future_slots):
    (slot,) = future_slots(3)
    booking = confirm(hold_slot(slot))
    page = open_page(booking.manage_path, width=PHONE, tz="Asia/Kolkata", bypass_csp=True)
    google = page.get_by_role("link", name=re.compile("^Google Calendar")).get_attribute("href")
    outlook = page.get_by_role("link", name=re.compile("^Outlook.com")).get_attribute("href")
    assert google.startswith("https://calendar.google.com/calendar/render?")
    dates = parse_qs(urlsplit(google).query)["dates"][0]
    assert dates == f"{slot.start:%Y%m%dT%H%M%SZ}/{slot.end:%Y%m%dT%H%M%SZ}"
    query = parse_qs(urlsplit(outlook).query)
    assert urlsplit(outlook).netloc == "outlook.live.com"
    assert query["startdt"] == [f"{slot.start:%Y-%m-%dT%H:%M:%SZ}"]
    assert query["subject"] == ["Python (video) with Ada Park"]
    assert booking.manage_token not in google + outlook
    ics = page.get_by_role("link", name="Add to calendar (.ics)")
    assert ics.is_visible()
    clean_axe(page)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


def test_the_zone_picker_shows_kolkata_not_calcutta_and_searches_by_city(open_page, future_slots):
    (slot,) = future_slots(3, hour=15)
    page = open_page("/t/ada/", width=PHONE, tz="Asia/Kolkata", bypass_csp=True)
    select = page.get_by_label("Time zone")
    assert select.input_value() == "Asia/Kolkata"
    values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert "Asia/Calcutta" not in values and "Europe/Kyiv" in values and "Europe/Kiev" not in values
    label = text(select.locator("option:checked").inner_text())
    assert re.fullmatch(r"Asia/Kolkata — \d{1,2}:\d\d( [AP]M)?, UTC\+5:30", label), label
    assert "Asia/Kolkata (detected from your browser)" in text(
        page.locator("#tz-hint").inner_text()
    )
    clean_axe(page)

    # Typing a city narrows the list; one match is taken at once.
    search = page.get_by_label("Search by city or offset")
    search.fill("Berl")
    assert select.locator("option").count() < 5
    search.fill("Berlin")
    assert select.input_value() == "Europe/Berlin"
    berlin = slot.start.astimezone(ZoneInfo("Europe/Berlin"))
    assert text(page.locator("a.slot").first.inner_text()).startswith(
        f"{berlin:%I:%M %p}".lstrip("0")
    )
    assert "tz=Europe%2FBerlin" in page.url or "tz=Europe/Berlin" in page.url
    search.fill("UTC+5:30")  # an offset finds its zones too
    assert any(t.startswith("Asia/Kolkata — ") for t in select.locator("option").all_inner_texts())


@pytest.mark.parametrize("zone", ZONES)
def test_the_24_hour_clock_is_remembered_in_this_browser(open_page, future_slots, zone):
    (slot,) = future_slots(3, hour=15)
    local = slot.start.astimezone(ZoneInfo(zone))
    page = open_page("/t/ada/", width=PHONE, tz=zone)
    first = page.locator("a.slot").first
    assert text(first.inner_text()).startswith(f"{local:%I:%M %p}".lstrip("0"))
    page.get_by_label("24-hour clock").check()
    assert text(first.inner_text()).startswith(f"{local:%H:%M}")
    assert re.search(
        r" — \d\d:\d\d, UTC",
        text(page.get_by_label("Time zone").locator("option:checked").inner_text()),
    )
    # Remembered: the next page in this browser (the form) uses it too.
    first.click()
    assert f"{local:%H:%M}" in text(page.locator(".summary-when").inner_text())
    page.goto("/t/ada/")
    assert page.get_by_label("24-hour clock").is_checked()
    assert not has_horizontal_scroll(page)
