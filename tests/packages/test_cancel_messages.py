"""What a booking paid with a package credit says about its cancellation: the credit
comes back or stays spent, never money (emails, the student's cancel and manage pages,
the tutor's booking page, the tutor's earnings)."""

from datetime import timedelta

import pytest
from django.test import Client

from bookings import notifications
from bookings import services as booking_services
from bookings.models import Actor, Booking, Notification, NotificationKind, Recipient
from packages import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(now, bought, slots) -> Booking:
    return services.purchase_book(purchase_id=bought.pk, slot_id=slots[0].pk, now=now)


def cancelled_email(booking: Booking, recipient: str, now) -> str:
    n = Notification.objects.get(
        booking=booking, kind=NotificationKind.CANCELLED, recipient=recipient
    )
    message = notifications.build_message(n, now=now)
    return message.body + str(message.alternatives[0][0])


def test_cancelling_in_time_tells_the_student_their_credit_is_back(now, booking):
    result = booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=now)

    assert (result.prepaid, result.credit_returned, result.refund_amount) == (True, True, 0)
    student = cancelled_email(booking, Recipient.STUDENT, now)
    tutor = cancelled_email(booking, Recipient.TUTOR, now)
    assert "One credit is back in your package" in student
    assert "No refund" not in student
    assert "The student's package credit was returned." in tutor
    assert "cancelled after" not in tutor


def test_a_repeated_cancel_answers_with_the_same_credit(now, booking):
    booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=now)
    again = booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=now)
    assert (again.prepaid, again.credit_returned) == (True, True)


def test_the_tutor_cancelling_late_returns_the_credit_and_says_so(now, booking, slots):
    late = slots[0].start - timedelta(hours=2)
    booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.TUTOR, now=late)

    student = cancelled_email(booking, Recipient.STUDENT, late)
    tutor = cancelled_email(booking, Recipient.TUTOR, late)
    assert "One credit is back in your package" in student
    assert "free-cancellation period ended" not in student
    assert "The student's package credit was returned." in tutor
    assert "the student cancelled after" not in tutor


def test_the_student_cancelling_late_is_told_the_credit_stays_spent(now, booking, slots):
    late = slots[0].start - timedelta(hours=2)
    result = booking_services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=late)

    assert (result.prepaid, result.credit_returned) == (True, False)
    student = cancelled_email(booking, Recipient.STUDENT, late)
    tutor = cancelled_email(booking, Recipient.TUTOR, late)
    assert "Your package credit stays spent" in student
    assert "No refund" not in student
    assert "The student's package credit was kept (cancelled late" in tutor


def test_the_cancel_page_offers_the_credit_back_not_a_refund(frozen, booking):
    html = Client().get(f"/bookings/{booking.manage_token}/cancel/").content.decode()

    assert "Cancelling gives one credit back to your package." in html
    assert "full refund" not in html


def test_the_manage_page_after_cancelling_says_the_credit_is_back(frozen, booking):
    client = Client()
    response = client.post(f"/bookings/{booking.manage_token}/cancel/", follow=True)
    html = response.content.decode()

    assert "One credit is back in your package" in html
    assert "No refund was due" not in html


def test_the_tutors_booking_page_cancels_by_returning_the_credit(frozen, client, tutor, booking):
    client.force_login(tutor.user)
    html = client.get(f"/tutor/bookings/{booking.pk}/").content.decode()

    assert "cancelling returns the student's credit" in html
    assert "Cancel and return the credit" in html
    assert "Cancel and refund" not in html

    response = client.post(
        f"/tutor/bookings/{booking.pk}/", {"action": "cancel", "reason": ""}, follow=True
    )
    assert "the student&#x27;s package credit was returned" in response.content.decode()


def test_a_credit_booking_is_no_card_money_in_the_earnings(frozen, client, tutor, booking):
    client.force_login(tutor.user)
    html = client.get("/tutor/").content.decode()

    table = html.split('id="earnings-heading"')[1].split("</section>")[0]
    assert "$90.00" not in table
