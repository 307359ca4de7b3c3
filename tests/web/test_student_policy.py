"""The cancellation policy said where it bites: the form, checkout, manage page, a move.

NOW is Wed 2 Dec 2026 15:00 UTC; the tutor refunds in full up to 24 hours before.
"""

from datetime import timedelta

import pytest

from payments.models import Payment
from tests.conftest import make_slot

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def late(tutor, remote, in_person, now):
    """18 hours away: past the 12 h notice (bookable), inside the 24 h refund window."""
    return make_slot(tutor, now + timedelta(hours=18), remote=remote, in_person=in_person)


def test_the_form_states_the_exact_free_cancellation_deadline_in_the_students_zone(
    client, frozen, slot
):
    html = client.get(f"/t/ada/book/?slot={slot.pk}&tz=Europe/Berlin").content.decode()
    # The slot starts Fri 4 Dec 15:00 UTC: free until Thu 3 Dec 15:00 UTC, 16:00 in Berlin.
    assert "Free cancellation until Thu 3 Dec, 16:00 Berlin time" in html
    assert 'data-policy="free"' in html
    assert "inside the 24-hour window" not in html


def test_the_form_warns_that_a_slot_inside_the_window_will_not_be_refunded(client, frozen, late):
    html = client.get(f"/t/ada/book/?slot={late.pk}&tz=Asia/Kolkata").content.decode()
    assert 'data-policy="late"' in html
    assert "This time is inside the 24-hour window: cancelling will not be refunded" in html
    # The deadline that already passed, in the student's zone (Wed 2 Dec 09:00 UTC).
    assert "free cancellation ended Wed 2 Dec, 14:30 Kolkata time" in html
    assert "Free cancellation until" not in html


def test_the_checkout_states_the_same_deadline(client, frozen, slot, late, now):
    for booked, words in [
        (slot, "Free cancellation until Thu 3 Dec, 10:00 New York time"),
        (late, "This time is inside the 24-hour window: cancelling will not be refunded"),
    ]:
        booking = hold_slot(booked, now=now)
        payment = Payment.objects.get(booking=booking)
        html = client.get(f"/payments/simulated/{payment.pk}/").content.decode()
        assert words in html


def test_the_manage_page_says_the_confirmation_emails_words(client, frozen, slot, now):
    booking = confirm(hold_slot(slot, now=now), now=now)
    html = client.get(booking.manage_path).content.decode()
    assert "Free cancellation until Thu 3 Dec, 10:00 New York time</strong>: cancel by then" in html


def test_the_manage_page_of_a_session_inside_the_window_says_it_refunds_nothing(
    client, frozen, late, now
):
    booking = confirm(hold_slot(late, now=now), now=now)
    html = client.get(booking.manage_path).content.decode()
    assert "cancelling this session now refunds nothing" in html
    assert "Free cancellation until" not in html


def test_a_move_into_a_slot_inside_the_window_is_announced_before_it_is_made(
    client, frozen, slot, late, now
):
    booking = confirm(hold_slot(slot, now=now), now=now)
    html = client.get(f"{booking.manage_path}reschedule/?slot={late.pk}").content.decode()
    assert "Move it to this time?" in html
    assert "This time is inside the 24-hour window: cancelling will not be refunded" in html


def test_the_picker_data_carries_the_refund_window(client, frozen, slot):
    html = client.get("/t/ada/").content.decode()
    assert '"refund_hours": 24' in html


def test_the_list_view_marks_slots_inside_the_window(client, frozen, slot, late):
    html = client.get("/t/ada/?view=list").content.decode()
    assert html.count("No free cancellation") == 1
    assert html.index("No free cancellation") < html.index(f"slot={slot.pk}")
