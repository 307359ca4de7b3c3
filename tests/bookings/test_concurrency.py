"""Real concurrency on PostgreSQL: many students, one slot, real connections."""

import threading
from collections import Counter
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import IntegrityError, connection, connections, transaction
from rest_framework.test import APIClient

from bookings import services
from bookings.models import Booking, BookingStatus, Slot, SlotSource
from tests.conftest import make_slot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_concurrently(n: int, fn) -> list:
    """Start n threads that wait at a barrier, then call fn(i) together."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_fifty_concurrent_holds_on_one_slot_give_one_201_and_49_409(slot, frozen):
    def attempt(i: int) -> int:
        response = APIClient().post(
            "/api/bookings/",
            {
                "slot": slot.pk,
                "mode": "remote" if i % 2 else "in_person",
                "student_name": f"Student {i}",
                "student_email": f"student{i}@example.com",
            },
            format="json",
        )
        return response.status_code

    statuses = Counter(run_concurrently(50, attempt))
    assert statuses == {201: 1, 409: 49}
    assert Booking.objects.filter(slot=slot, status=BookingStatus.PENDING_PAYMENT).count() == 1


def test_concurrent_adjacent_in_person_holds_respect_the_travel_buffer(
    tutor, in_person, now, frozen
):
    slots = [
        make_slot(tutor, now + timedelta(days=2, hours=h), in_person=in_person) for h in range(4)
    ]

    def attempt(i: int) -> int:
        response = APIClient().post(
            "/api/bookings/",
            {
                "slot": slots[i % 4].pk,
                "mode": "in_person",
                "student_name": f"Student {i}",
                "student_email": f"student{i}@example.com",
            },
            format="json",
        )
        return response.status_code

    statuses = Counter(run_concurrently(20, attempt))
    assert statuses[201] in (1, 2)  # e.g. slots 0 and 2 or 1 and 3, never neighbours
    held = sorted(
        b.slot.start for b in Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT)
    )
    for a, b in pairwise(held):
        assert b - a >= timedelta(hours=1, minutes=30)
    assert set(statuses) <= {201, 409}


def test_the_exclusion_constraint_rejects_overlap_even_without_the_application(tutor, remote, now):
    make_slot(tutor, now + timedelta(days=1), remote=remote)
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Slot.objects.bulk_create(
            [
                Slot(
                    tutor=tutor,
                    start=now + timedelta(days=1, minutes=59),
                    end=now + timedelta(days=1, minutes=119),
                    source=SlotSource.ONE_OFF,
                    remote_offering=remote,
                )
            ]
        )
    assert "slot_no_overlap" in str(caught.value)
    with connection.cursor() as cursor:
        cursor.execute("SELECT contype FROM pg_constraint WHERE conname = 'slot_no_overlap'")
        assert cursor.fetchone() == ("x",)  # an exclusion constraint


def test_two_sweepers_at_once_expire_each_hold_once(tutor, remote, now, settings):
    settings.BOOKING_MAX_HELD_SHARE = 1  # ten holds on a ten-slot calendar
    slots = [make_slot(tutor, now + timedelta(days=1, hours=h), remote=remote) for h in range(10)]
    for i, s in enumerate(slots):
        services.booking_hold(
            slot_id=s.pk,
            mode="remote",
            student_name="S",
            student_email=f"s{i}@example.com",
            now=now,
        )
    later = now + timedelta(hours=1)
    counts = run_concurrently(4, lambda i: services.bookings_expire_holds(now=later))
    assert sum(counts) == 10
    assert Booking.objects.filter(status=BookingStatus.EXPIRED).count() == 10
    from bookings.models import BookingEvent

    assert BookingEvent.objects.filter(to_status=BookingStatus.EXPIRED).count() == 10


def test_concurrent_payments_for_one_booking_confirm_it_once(slot, now):
    booking = services.booking_hold(
        slot_id=slot.pk, mode="remote", student_name="S", student_email="s@example.com", now=now
    ).booking
    results = run_concurrently(
        8, lambda i: services.booking_confirm(booking_id=booking.pk, now=now).status
    )
    assert results == [BookingStatus.CONFIRMED] * 8
    from bookings.models import BookingEvent

    assert BookingEvent.objects.filter(to_status=BookingStatus.CONFIRMED).count() == 1
