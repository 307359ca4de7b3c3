"""Booking with a package's link: one credit per booking, confirmed at once; cancelling in
time returns the credit, late keeps it spent; expired credits are not usable."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from bookings import services as booking_services
from bookings.models import Actor, Booking, BookingStatus
from packages import services
from packages.models import Entry, EntryKind
from packages.selectors import balance
from payments.models import Payment, Refund
from tests.conftest import make_slot

from .conftest import buy, remote_slots

pytestmark = pytest.mark.django_db


def spend(api, purchase, slot):
    return api.post(f"/api/packages/{purchase.token}/bookings/", {"slot": slot.pk}, format="json")


def test_booking_with_a_credit_confirms_at_once_and_spends_one(api, frozen, now, bought, slots):
    response = spend(api, bought, slots[0])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "confirmed"
    booking = Booking.objects.get(pk=body["id"])
    assert booking.slot == slots[0]
    assert booking.student_email == "sam@example.com"
    assert booking.events.filter(to_status=BookingStatus.CONFIRMED).count() == 1
    assert not Payment.objects.filter(booking=booking).exists()  # no checkout: a credit paid
    spent = Entry.objects.get(kind=EntryKind.SPEND)
    assert (spent.booking, spent.credits) == (booking, -1)
    assert balance(bought, now=now) == 4
    detail = api.get(f"/api/packages/{bought.token}/").json()
    assert detail["balance"] == 4
    assert [e["kind"] for e in detail["entries"]] == ["purchase", "spend"]


def test_a_taken_slot_spends_nothing(api, frozen, now, bought, slots, package):
    other = buy(package, now, email="other@example.com")
    assert spend(api, other, slots[0]).status_code == 201
    response = spend(api, bought, slots[0])
    assert response.status_code == 409
    assert balance(bought, now=now) == 5
    assert Booking.objects.count() == 1


def test_a_slot_of_another_session_type_is_refused_and_spends_nothing(
    api, frozen, now, tutor, in_person, bought
):
    nyc = make_slot(tutor, now + timedelta(days=3), in_person=in_person)
    response = spend(api, bought, nyc)
    assert response.status_code == 400
    assert balance(bought, now=now) == 5
    assert not Booking.objects.exists()


def test_the_last_credit_books_once_and_then_there_is_none(
    api, frozen, now, tutor, remote, package
):
    package.sessions = 1
    package.save()
    purchase = buy(package, now)
    first, second = remote_slots(tutor, remote, now, n=2)
    assert spend(api, purchase, first).status_code == 201
    response = spend(api, purchase, second)
    assert response.status_code == 409
    assert response.json()["code"] == "no_credit"
    assert Booking.objects.count() == 1


def test_cancelling_within_the_policy_returns_the_credit_instead_of_money(
    api, frozen, now, bought, slots
):
    booking = Booking.objects.get(pk=spend(api, bought, slots[0]).json()["id"])
    response = api.post(f"/api/bookings/{booking.manage_token}/cancel/")
    assert response.status_code == 200, response.content
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert booking.refund_amount == 0
    assert not Refund.objects.exists()
    returned = Entry.objects.get(kind=EntryKind.RETURN)
    assert returned.booking == booking
    assert returned.reverses == Entry.objects.get(kind=EntryKind.SPEND)
    assert balance(bought, now=now) == 5
    # Cancelling again changes nothing.
    booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=now)
    assert Entry.objects.filter(kind=EntryKind.RETURN).count() == 1


def test_the_tutor_cancelling_always_returns_the_credit(now, bought, slots):
    booking = services.purchase_book(purchase_id=bought.pk, slot_id=slots[0].pk, now=now)
    late = slots[0].start - timedelta(hours=2)
    booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.TUTOR, now=late)
    assert balance(bought, now=late) == 5


def test_cancelling_outside_the_policy_keeps_the_credit_spent(now, bought, slots):
    booking = services.purchase_book(purchase_id=bought.pk, slot_id=slots[0].pk, now=now)
    late = slots[0].start - timedelta(hours=2)  # inside the 24 h before the session
    cancelled = booking_services.booking_cancel(
        booking_id=booking.pk, actor=Actor.STUDENT, now=late
    )
    assert cancelled.refund_amount == 0
    assert not Entry.objects.filter(kind=EntryKind.RETURN).exists()
    assert balance(bought, now=late) == 4
    assert not Refund.objects.exists()


def test_expired_credits_cannot_be_used(api, frozen, now, tutor, remote, bought):
    after = bought.expires_at + timedelta(minutes=1)
    frozen.move_to(after)
    slot = make_slot(tutor, after + timedelta(days=2), remote=remote)
    response = spend(api, bought, slot)
    assert response.status_code == 410
    assert response.json()["code"] == "package_expired"
    assert not Booking.objects.exists()
    assert api.get(f"/api/packages/{bought.token}/").json()["balance"] == 0


def test_the_expiry_sweep_closes_the_ledger_once(now, bought):
    after = bought.expires_at + timedelta(hours=1)
    assert services.purchases_expire(now=now) == 0
    assert services.purchases_expire(now=after) == 1
    assert services.purchases_expire(now=after) == 0
    assert Entry.objects.get(kind=EntryKind.EXPIRY).credits == -5
    assert sum(Entry.objects.values_list("credits", flat=True)) == 0


def test_an_unpaid_purchase_books_nothing(api, frozen, now, package, slots):
    start = services.purchase_start(
        package_id=package.pk, student_name="Sam", student_email="sam@example.com", now=now
    )
    response = spend(api, start.purchase, slots[0])
    assert response.status_code == 409
    assert response.json()["code"] == "not_paid"


def test_a_forged_link_is_a_404(api, frozen, bought, slots):
    assert api.get(f"/api/packages/{bought.link_key}/").status_code == 404
    assert spend(api, type(bought)(link_key="x" * 22), slots[0]).status_code == 404


# --- the ledger's own rules ------------------------------------------------------------


def test_a_booking_spends_at_most_once(now, bought, slots):
    booking = services.purchase_book(purchase_id=bought.pk, slot_id=slots[0].pk, now=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            purchase=bought, kind=EntryKind.SPEND, credits=-1, booking=booking, at=now
        )


def test_a_return_needs_its_spend_and_comes_once(now, bought, slots):
    booking = services.purchase_book(purchase_id=bought.pk, slot_id=slots[0].pk, now=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            purchase=bought, kind=EntryKind.RETURN, credits=1, booking=booking, at=now
        )
    spent = Entry.objects.get(kind=EntryKind.SPEND)
    Entry.objects.create(
        purchase=bought, kind=EntryKind.RETURN, credits=1, booking=booking, reverses=spent, at=now
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            purchase=bought,
            kind=EntryKind.RETURN,
            credits=1,
            booking=booking,
            reverses=spent,
            at=now,
        )


def test_credits_are_granted_once_per_purchase(now, bought):
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(purchase=bought, kind=EntryKind.PURCHASE, credits=5, at=now)


def test_an_entry_is_never_changed(bought):
    entry = Entry.objects.get()
    entry.credits = 50
    with pytest.raises(ValueError, match="never changed"):
        entry.save()


def test_a_credit_books_even_when_the_student_has_the_most_unpaid_holds(
    api, frozen, now, bought, slots, settings
):
    """The hold limits count unpaid holds; a credit booking is paid and confirmed at
    once, so the student's open checkouts elsewhere do not stop it."""
    settings.BOOKING_MAX_HOLDS_PER_EMAIL = 1
    booking_services.booking_hold(
        slot_id=slots[0].pk, mode="remote", student_name="Sam",
        student_email="sam@example.com", now=now,
    )  # fmt: skip
    assert Booking.objects.get().status == BookingStatus.PENDING_PAYMENT

    response = spend(api, bought, slots[1])

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "confirmed"
    assert balance(bought, now=now) == 4
