"""Fixtures for the web pages: Django test client helpers and a real Chromium.

Browser tests carry the `browser` marker and run against pytest-django's live server.
Without Playwright or Chromium they are skipped, except in CI (CI=true), where that is
an error: CI must run them.
"""

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking, Offering, Slot, Tutor
from payments import services as payment_services
from payments.models import Payment
from tests.conftest import make_slot

# Playwright's sync API runs an event loop in this thread; Django would then refuse ORM
# calls from the test body, which are plain synchronous calls here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-dev.lock)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    return None


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: only tests that will run count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    if not browser_items:
        return
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI runs the browser tests, but {reason}.")
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=f"browser test: {reason}"))


# --- data -----------------------------------------------------------------------------------


def confirm(booking: Booking, *, now: datetime | None = None) -> Booking:
    """Pay for a hold through the simulated checkout, as the student's click would."""
    payment = Payment.objects.get(booking=booking)
    payment_services.simulated_pay(payment=payment, now=now or timezone.now())
    booking.refresh_from_db()
    return booking


def hold_slot(
    slot: Slot, *, mode: str = "remote", email: str = "sam@example.com", now: datetime | None = None
) -> Booking:
    return services.booking_hold(
        slot_id=slot.pk,
        mode=mode,
        student_name="Sam Student",
        student_email=email,
        notes="Decorators, please",
        student_timezone="America/New_York",
        now=now or timezone.now(),
    ).booking


@pytest.fixture
def future_slots(tutor: Tutor, remote: Offering, in_person: Offering) -> Callable[..., list[Slot]]:
    """Slots on the real clock (the live server cannot be frozen): days ahead, whole hours."""

    def make(*days: float, hour: int = 15) -> list[Slot]:
        base = timezone.now().replace(minute=0, second=0, microsecond=0)
        return [
            make_slot(
                tutor,
                (base + timedelta(days=d)).replace(hour=hour),
                remote=remote,
                in_person=in_person,
            )
            for d in days
        ]

    return make


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any, live_server: Any, settings: Any) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh browser context: phone or desktop size, any time zone.

    Any console error or uncaught script error on any page fails the test.
    """
    settings.PUBLIC_BASE_URL = live_server.url
    opened: list[tuple[Any, list[str]]] = []

    def open_(
        path: str | None = "/",
        *,
        width: int = 1280,
        height: int = 900,
        tz: str = "America/New_York",
        bypass_csp: bool = False,
    ) -> Any:
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            locale="en-US",
            timezone_id=tz,
            # Only to inject axe-core: the site's CSP rightly refuses inline scripts.
            bypass_csp=bypass_csp,
        )
        context.set_default_timeout(10_000)
        errors: list[str] = []
        opened.append((context, errors))
        page = context.new_page()

        def on_console(message: Any) -> None:
            if message.type == "error":
                errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        if path is not None:
            page.goto(path)
        return page

    yield open_
    problems = [e for _, errors in opened for e in errors]
    for context, _ in opened:
        context.close()
    if problems:
        pytest.fail("Console errors:\n" + "\n".join(problems))


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every axe-core violation on the current page (WCAG 2.x A/AA and best practices)."""
    page.add_script_tag(path=str(AXE))
    result: list[dict[str, Any]] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    return result


def save_report(name: str, data: Any) -> None:
    path = ROOT / "artifacts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def has_horizontal_scroll(page: Any) -> bool:
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


def text(value: str) -> str:
    """Intl puts narrow no-break spaces before AM/PM; compare with plain spaces."""
    return " ".join(value.replace("\u202f", " ").replace("\xa0", " ").split())
