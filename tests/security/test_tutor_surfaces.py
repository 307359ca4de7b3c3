"""Nothing a tutor can read carries the student's private link.

The manage link acts as the student (cancel, reschedule). The tutor sees the booking
through their own API, pages, calendar feed and the admin, and none of them may show
the token, whatever state the booking is in.
"""

from datetime import timedelta

import pytest
from django.test import Client

from bookings import services
from bookings.models import Booking, Slot, Tutor
from payments import services as payment_services
from payments.models import Payment
from tests.conftest import hold

pytestmark = pytest.mark.django_db


def confirmed(api, slot: Slot, now) -> Booking:
    assert hold(api, slot).status_code == 201
    booking = Booking.objects.get(slot=slot)
    payment = Payment.objects.get(booking=booking)
    payment_services.payment_succeeded(
        payment_id=payment.pk,
        now=now,
        received=payment_services.Money(payment.amount, payment.currency),
        source="test",
    )
    booking.refresh_from_db()
    return booking


def tutor_surfaces(tutor: Tutor, tutor_api, booking: Booking) -> dict[str, str]:
    web = Client()
    web.force_login(tutor.user)
    pages = {
        "api list": tutor_api.get("/api/tutor/bookings/"),
        "api detail": tutor_api.get(f"/api/tutor/bookings/{booking.pk}/"),
        "api slots": tutor_api.get("/api/tutor/slots/"),
        "dashboard": web.get("/tutor/"),
        "booking page": web.get(f"/tutor/bookings/{booking.pk}/"),
        "slots page": web.get("/tutor/slots/"),
        "feed": web.get(f"/calendar/{tutor.feed_token}.ics"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
    return {name: r.content.decode() for name, r in pages.items()}


@pytest.mark.parametrize("state", ["held", "confirmed", "cancelled by the tutor"])
def test_no_tutor_surface_shows_the_manage_token(tutor, tutor_api, api, slot, now, frozen, state):
    if state == "held":
        assert hold(api, slot).status_code == 201
        booking = Booking.objects.get(slot=slot)
    else:
        booking = confirmed(api, slot, now)
    if state.startswith("cancelled"):
        services.booking_cancel(booking_id=booking.pk, actor="tutor", now=now)

    for name, body in tutor_surfaces(tutor, tutor_api, booking).items():
        assert booking.manage_token not in body, name


def test_the_tutors_answer_to_a_cancel_has_no_student_link(tutor_api, api, slot, now, frozen):
    booking = confirmed(api, slot, now)
    response = tutor_api.post(f"/api/tutor/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert booking.manage_token not in response.content.decode()
    assert {"manage_url", "invite_url", "payment_url"}.isdisjoint(response.json())


def test_the_student_still_gets_their_links_and_the_policy_deadline(api, slot, now, frozen):
    booking = confirmed(api, slot, now)
    body = api.get(f"/api/bookings/{booking.manage_token}/").json()
    assert body["manage_url"].endswith(f"/bookings/{booking.manage_token}/")
    assert body["invite_url"].endswith(f"/api/bookings/{booking.manage_token}/invite.ics")
    deadline = slot.start - timedelta(hours=booking.tutor.full_refund_hours)
    assert body["free_cancellation_until"] == deadline.isoformat().replace("+00:00", "Z")
