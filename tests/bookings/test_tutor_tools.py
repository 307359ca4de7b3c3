"""The services behind the tutor's tools: cancelling on days off, moving, asking, undoing."""

from datetime import timedelta

import pytest

from bookings import services
from bookings.errors import ApplicationError, NotFound
from bookings.models import Actor, BookingStatus, Notification
from tests.conftest import add_offerings, make_slot
from tests.web.conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(frozen, slot, now):
    return confirm(hold_slot(slot, now=now), now=now)


def test_cancelling_on_days_off_reaches_only_the_tutors_own_sessions_inside(
    booked, tutor, make_tutor, now
):
    other = make_tutor(slug="bo")
    remote, _ = add_offerings(other)
    theirs = confirm(
        hold_slot(make_slot(other, booked.slot.start, remote=remote), now=now), now=now
    )
    block = services.block_create(
        tutor=tutor, start=booked.slot.start, end=booked.slot.end, now=now
    )
    their_block = services.block_create(
        tutor=other, start=booked.slot.start, end=booked.slot.end, now=now
    )
    with pytest.raises(NotFound):
        services.block_cancel_bookings(
            tutor=tutor, block=their_block, booking_ids=[theirs.pk], now=now
        )
    done = services.block_cancel_bookings(
        tutor=tutor, block=block, booking_ids=[theirs.pk, "not-a-uuid", booked.pk], now=now
    )
    assert [c.booking.pk for c in done] == [booked.pk]
    assert done[0].refund_amount == booked.price_amount  # the tutor's cancellation: in full
    theirs.refresh_from_db()
    assert theirs.status == BookingStatus.CONFIRMED
    # Again: nothing more happens.
    assert (
        services.block_cancel_bookings(tutor=tutor, block=block, booking_ids=[booked.pk], now=now)
        == []
    )


def test_the_tutor_cannot_move_a_session_that_started(booked, tutor, remote, now):
    later = make_slot(tutor, now + timedelta(days=5), remote=remote)
    with pytest.raises(ApplicationError) as refused:
        services.booking_reschedule(
            booking_id=booked.pk,
            slot_id=later.pk,
            now=booked.slot.start + timedelta(minutes=1),
            actor=Actor.TUTOR,
        )
    assert refused.value.code == "session_started"


def test_a_student_past_the_refund_line_still_cannot_move(booked, tutor, remote, now):
    later = make_slot(tutor, now + timedelta(days=5), remote=remote)
    with pytest.raises(ApplicationError) as refused:
        services.booking_reschedule(
            booking_id=booked.pk, slot_id=later.pk, now=booked.slot.start - timedelta(hours=2)
        )
    assert refused.value.code == "reschedule_window_closed"


def test_only_an_outcome_can_be_undone(booked, now):
    services.booking_cancel(booking_id=booked.pk, actor=Actor.TUTOR, now=now)
    with pytest.raises(ApplicationError) as refused:
        services.booking_outcome_undo(booking_id=booked.pk, now=now)
    assert (refused.value.code, refused.value.status) == ("invalid_transition", 409)


def test_an_outcome_cannot_jump_to_the_other_without_an_undo(booked):
    after = booked.slot.end + timedelta(minutes=1)
    services.booking_mark_outcome(booking_id=booked.pk, status=BookingStatus.COMPLETED, now=after)
    with pytest.raises(ApplicationError) as refused:
        services.booking_mark_outcome(booking_id=booked.pk, status=BookingStatus.NO_SHOW, now=after)
    assert refused.value.code == "invalid_transition"
    services.booking_outcome_undo(booking_id=booked.pk, now=after)
    services.booking_mark_outcome(booking_id=booked.pk, status=BookingStatus.NO_SHOW, now=after)
    booked.refresh_from_db()
    assert booked.status == BookingStatus.NO_SHOW


@pytest.mark.parametrize("message", ["right\u202eleft", "bell\x07", "x" * 2001])
def test_asking_with_a_message_no_email_should_carry_is_refused(booked, now, message):
    with pytest.raises(ApplicationError) as refused:
        services.booking_ask_to_reschedule(booking_id=booked.pk, now=now, message=message)
    assert "message" in refused.value.fields
    assert not Notification.objects.filter(kind="pick_another_time").exists()


def test_the_api_records_a_no_show_only_after_the_session(tutor_api, booked, frozen):
    frozen.shift(timedelta(days=2, minutes=30))  # started half an hour ago
    response = tutor_api.post(f"/api/tutor/bookings/{booked.pk}/no-show/")
    assert response.status_code == 409
    assert response.json()["code"] == "session_not_over"
    frozen.shift(timedelta(minutes=31))
    response = tutor_api.post(f"/api/tutor/bookings/{booked.pk}/no-show/")
    assert response.json()["status"] == "no_show"
