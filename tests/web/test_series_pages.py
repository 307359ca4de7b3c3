"""The weekly series pages: the form at /t/<slug>/series/ (bookings/web/series_views.py)
that holds one time every week through bookings.series.series_hold, and the student's
series page /series/<token>/ with "cancel the remaining sessions"."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from bookings import series as series_service
from bookings import services
from bookings.models import Booking, BookingSeries, BookingStatus, Slot
from payments import services as payment_services
from payments.models import Payment, Refund
from tests.conftest import make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly(tutor: Any, remote: Any, in_person: Any, now: datetime) -> list[Slot]:
    """Five weeks of the same time, two days ahead and every week after."""
    first = now + timedelta(days=2)
    return [
        make_slot(tutor, first + timedelta(weeks=n), remote=remote, in_person=in_person)
        for n in range(5)
    ]


def form(slot: Slot, **changes: Any) -> dict[str, Any]:
    data = {
        "slot": slot.pk,
        "mode": "remote",
        "weeks": 4,
        "student_name": "Sam Student",
        "student_email": "sam@example.com",
        "notes": "Decorators, please",
        "student_timezone": "Europe/Paris",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def take(slot: Slot, *, email: str = "kim@example.com", now: datetime) -> Booking:
    return services.booking_hold(
        slot_id=slot.pk,
        mode="remote",
        student_name="Kim",
        student_email=email,
        now=now,
    ).booking


def pay(series: BookingSeries, *, now: datetime) -> None:
    """The series' one payment, through the simulated checkout."""
    payment_services.simulated_pay(payment=Payment.objects.get(series=series), now=now)


def series_hold(first: Slot, *, now: datetime, weeks: int = 4) -> BookingSeries:
    return series_service.series_hold(
        slot_id=first.pk,
        mode="remote",
        weeks=weeks,
        student_name="Sam Student",
        student_email="sam@example.com",
        student_timezone="Europe/Paris",
        now=now,
    ).series


# --- the form ---------------------------------------------------------------------------------


def test_the_booking_form_links_to_booking_the_time_every_week(client, frozen, weekly):
    html = client.get(f"/t/ada/book/?slot={weekly[0].pk}&tz=Europe/Paris").content.decode()
    assert ">Repeat weekly</h2>" in html
    assert f"/t/ada/series/?slot={weekly[0].pk}&amp;tz=Europe/Paris" in html


def test_the_form_shows_the_first_week_the_weeks_allowed_and_the_price(client, frozen, weekly):
    response = client.get(f"/t/ada/series/?slot={weekly[0].pk}&mode=remote&tz=Europe/Paris")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Friday, December 4, 2026 at 4:00 PM" in html  # 15:00 UTC in Paris
    assert "Number of weeks (2 to 8)" in html  # the horizon: eight weeks
    assert 'min="2"' in html and 'max="8"' in html
    assert "4 sessions × $90.00 = $360.00, paid together in one payment." in html
    assert 'data-policy="free"' in html
    assert "Each session has its own cancellation" in html


def test_a_valid_form_holds_every_week_and_goes_to_the_one_checkout(client, frozen, weekly):
    response = client.post("/t/ada/series/", form(weekly[0]))
    series = BookingSeries.objects.get()
    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"http://testserver/payments/simulated/{payment.pk}/"
    assert payment.series_id == series.pk and payment.amount == 4 * 9000
    held = Booking.objects.order_by("series_week")
    assert [(b.series_week, b.slot_id, b.status) for b in held] == [
        (n + 1, weekly[n].pk, BookingStatus.PENDING_PAYMENT) for n in range(4)
    ]
    assert series.student_timezone == "Europe/Paris"


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"weeks": 1}, "weeks", "Choose from 2 to 8 weeks."),
        ({"weeks": 9}, "weeks", "Choose from 2 to 8 weeks."),
        ({"weeks": "four"}, "weeks", "Enter a whole number of weeks."),
        ({"student_email": "sam@"}, "student_email", "That does not look like an email"),
        ({"student_name": "Sam\x07"}, "student_name", "Remove the invisible control character"),
        ({"notes": "Hi\x1b[31m"}, "notes", "Remove the invisible control character U+001B"),
    ],
)
def test_a_bad_form_says_what_to_fix_and_holds_nothing(
    client, frozen, weekly, changes, field, message
):
    response = client.post("/t/ada/series/", form(weekly[0], **changes))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert 'class="error-summary"' in response.content.decode()
    assert not Booking.objects.exists()
    assert not BookingSeries.objects.exists()


def test_a_taken_week_is_listed_ticked_to_leave_out_and_nothing_is_held(
    client, frozen, weekly, now
):
    take(weekly[2], now=now)
    response = client.post("/t/ada/series/", form(weekly[0]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Some weeks cannot be booked" in html
    day = weekly[2].start.astimezone(weekly[2].tutor.zone).date().isoformat()
    assert f'name="skip" value="{day}" id="skip_{day}" checked' in html
    # In the student's zone (Paris), with why.
    assert 'Week 3: <time datetime="2026-12-18T15:00:00+00:00">Fri, Dec 18, 4:00 PM</time>' in html
    assert "This slot was just taken." in html
    assert "Hold the other 3 weeks" in html
    assert "3 sessions × $90.00 = $270.00" in html
    assert Booking.objects.filter(series__isnull=False).count() == 0

    # Leaving it out holds the other three, paid in one checkout.
    response = client.post("/t/ada/series/", form(weekly[0], skip=[day]))
    assert response.status_code == 302
    held = Booking.objects.filter(series__isnull=False).order_by("series_week")
    assert [b.series_week for b in held] == [1, 2, 4]
    assert Payment.objects.get(series__isnull=False).amount == 3 * 9000


def test_a_week_without_a_slot_is_named_with_why(client, frozen, weekly):
    weekly[1].delete()
    response = client.post("/t/ada/series/", form(weekly[0]))
    assert response.status_code == 200
    assert "The tutor has no slot at that time that week." in response.content.decode()


def test_a_first_week_gone_sends_the_student_to_the_taken_page(client, frozen, weekly, now):
    take(weekly[0], now=now)
    response = client.get(f"/t/ada/series/?slot={weekly[0].pk}")
    assert response.status_code == 302
    assert response["Location"] == f"/t/ada/book/?slot={weekly[0].pk}"


def test_a_skip_that_is_not_a_week_of_the_series_is_refused(client, frozen, weekly):
    response = client.post("/t/ada/series/", form(weekly[0], skip=["2026-12-05"]))
    assert response.status_code == 200
    assert "That week is not part of this series." in response.content.decode()
    assert not Booking.objects.exists()


# --- the series page --------------------------------------------------------------------------


def test_the_series_page_lists_each_session_in_the_students_zone(client, frozen, weekly, now):
    series = series_hold(weekly[0], now=now)
    pay(series, now=now)
    response = client.get(f"/series/{series.manage_token}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'Week 1: <time datetime="2026-12-04T15:00:00+00:00">Fri, Dec 4, 4:00 PM' in html
    assert 'Week 4: <time datetime="2026-12-25T15:00:00+00:00">Fri, Dec 25, 4:00 PM' in html
    assert html.count('data-status="confirmed"') == 4
    for booking in Booking.objects.filter(series=series):
        assert booking.manage_path in html
    assert f"/api/series/{series.manage_token}/invite.ics" in html
    assert f"/series/{series.manage_token}/cancel/" in html
    assert "4 sessions, $360.00 in all." in html


def test_a_session_page_links_back_to_its_series(client, frozen, weekly, now):
    series = series_hold(weekly[0], now=now)
    booking = Booking.objects.get(series=series, series_week=2)
    html = client.get(booking.manage_path).content.decode()
    assert f'href="/series/{series.manage_token}/"' in html


def test_someone_elses_or_a_made_up_link_is_a_404(client, frozen, weekly, now):
    series = series_hold(weekly[0], now=now)
    pay(series, now=now)
    single = take(weekly[4], now=now)
    tampered = series.manage_token[:-2] + ("AA" if not series.manage_token.endswith("AA") else "BB")
    for token in (single.manage_token, tampered, "nope"):
        assert client.get(f"/series/{token}/").status_code == 404
        assert client.post(f"/series/{token}/cancel/").status_code == 404
    assert Booking.objects.filter(series=series, status=BookingStatus.CONFIRMED).count() == 4


def test_cancelling_the_rest_asks_first_then_refunds_each_session(client, frozen, weekly, now):
    series = series_hold(weekly[0], now=now)
    pay(series, now=now)
    page = f"/series/{series.manage_token}/"
    ask = client.get(f"{page}cancel/")
    assert ask.status_code == 200
    assert "Yes, cancel 4 sessions" in ask.content.decode()
    assert not Refund.objects.exists()

    response = client.post(f"{page}cancel/", follow=True)
    assert response.redirect_chain == [(page, 302)]
    html = response.content.decode()
    assert "4 sessions cancelled. $360.00 is on its way back to your card." in html
    assert html.count('data-status="cancelled"') == 4
    assert "Cancel the remaining sessions" not in html
    assert sorted(r.amount for r in Refund.objects.all()) == [9000] * 4
    # Nothing left: the confirmation step sends the student back to the series.
    assert client.get(f"{page}cancel/")["Location"] == page
    assert client.post(f"{page}cancel/", follow=True).redirect_chain == [(page, 302)]
    assert Refund.objects.count() == 4


def test_the_series_confirmation_email_links_the_series_page(
    client, frozen, weekly, now, settings, django_capture_on_commit_callbacks
):
    series = series_hold(weekly[0], now=now)
    with django_capture_on_commit_callbacks(execute=True):
        pay(series, now=now)
    to_student = [m for m in mail.outbox if m.to == ["sam@example.com"]]
    assert to_student
    assert f"{settings.PUBLIC_BASE_URL}/series/{series.manage_token}/" in to_student[0].body


def test_the_series_link_is_scrubbed_from_logs(frozen, weekly, now):
    from config.observability import redact

    series = series_hold(weekly[0], now=now)
    line = redact(f"GET /series/{series.manage_token}/cancel/ 200")
    assert series.manage_token not in line
    assert line == "GET /series/[redacted]/cancel/ 200"
