"""The database itself keeps the invariants, even when the application check is bypassed."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from bookings.models import Booking, BookingStatus, Slot, SlotRemoval, SlotSource
from tests.bookings.test_materialise import book
from tests.conftest import make_slot

pytestmark = pytest.mark.django_db


def test_a_second_active_booking_on_one_slot_is_rejected_by_the_database(slot):
    book(slot, BookingStatus.PENDING_PAYMENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        book(slot, BookingStatus.CONFIRMED)
    assert Booking.objects.filter(slot=slot).count() == 1


def test_inactive_bookings_do_not_count_against_the_slot(slot):
    book(slot, BookingStatus.EXPIRED)
    book(slot, BookingStatus.CANCELLED)
    book(slot, BookingStatus.CONFIRMED)
    assert Booking.objects.filter(slot=slot).count() == 3


def test_overlapping_slots_of_one_tutor_are_rejected_by_the_database(tutor, remote, now):
    make_slot(tutor, now + timedelta(days=1), remote=remote)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_slot(tutor, now + timedelta(days=1, minutes=30), remote=remote)
    with pytest.raises(IntegrityError), transaction.atomic():
        # bulk_create skips save() and every Python check.
        Slot.objects.bulk_create(
            [
                Slot(
                    tutor=tutor,
                    start=now + timedelta(days=1, minutes=-30),
                    end=now + timedelta(days=1, minutes=30),
                    source=SlotSource.ONE_OFF,
                    remote_offering=remote,
                )
            ]
        )


def test_moving_a_slot_onto_another_is_rejected_by_the_database(tutor, remote, now):
    make_slot(tutor, now + timedelta(days=1), remote=remote)
    later = make_slot(tutor, now + timedelta(days=2), remote=remote)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=later.pk).update(
            start=now + timedelta(days=1, minutes=10), end=now + timedelta(days=1, minutes=70)
        )


def test_adjacent_slots_and_withdrawn_slots_do_not_conflict(tutor, remote, now):
    first = make_slot(tutor, now + timedelta(days=1), remote=remote)
    make_slot(tutor, first.end, remote=remote)  # back to back is fine
    Slot.objects.filter(pk=first.pk).update(removed_at=now, removed_reason=SlotRemoval.DELETED)
    make_slot(tutor, first.start + timedelta(minutes=-30), remote=remote)
    assert Slot.objects.filter(tutor=tutor, removed_at__isnull=True).count() == 2


def test_other_tutors_may_use_the_same_time(make_tutor, tutor, remote, now):
    other = make_tutor()
    from tests.conftest import add_offerings

    other_remote, _ = add_offerings(other)
    make_slot(tutor, now + timedelta(days=1), remote=remote)
    make_slot(other, now + timedelta(days=1), remote=other_remote)
    assert Slot.objects.filter(start=now + timedelta(days=1)).count() == 2


def test_a_slot_must_offer_a_mode_and_end_after_it_starts(tutor, remote, now):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_slot(tutor, now + timedelta(days=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        make_slot(tutor, now + timedelta(days=1), remote=remote, minutes=0)
