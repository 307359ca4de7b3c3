"""Real concurrency on PostgreSQL: two tabs (here fifty) spending a package's last credit."""

from collections import Counter

import pytest
from rest_framework.test import APIClient

from bookings.models import Booking, BookingStatus
from packages.models import Entry, EntryKind
from tests.bookings.test_concurrency import run_concurrently

from .conftest import buy, remote_slots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_attempts_to_spend_the_last_credit_make_exactly_one_booking(
    tutor, remote, package, now, frozen
):
    package.sessions = 1
    package.save()
    purchase = buy(package, now)
    # Fifty different open slots: only the credit, not a slot, can stop them.
    slots = remote_slots(tutor, remote, now, n=50)
    token = purchase.token

    def attempt(i: int) -> int:
        response = APIClient().post(
            f"/api/packages/{token}/bookings/", {"slot": slots[i].pk}, format="json"
        )
        return response.status_code

    statuses = Counter(run_concurrently(50, attempt))
    assert statuses == {201: 1, 409: 49}
    assert Booking.objects.filter(status=BookingStatus.CONFIRMED).count() == 1
    assert Entry.objects.filter(kind=EntryKind.SPEND).count() == 1
    assert sum(Entry.objects.values_list("credits", flat=True)) == 0
