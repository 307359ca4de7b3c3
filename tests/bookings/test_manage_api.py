"""The manage link's API: detail, cancel (refund per policy), reschedule, invite.ics."""

from datetime import timedelta

import icalendar
import pytest

from bookings import services
from bookings.models import Booking, BookingStatus
from payments.models import Payment, PaymentStatus, Refund
from tests.conftest import hold, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(api, frozen, slot) -> Booking:
    assert hold(api, slot).status_code == 201
    return Booking.objects.get()


@pytest.fixture
def confirmed(held: Booking, now) -> Booking:
    payment = Payment.objects.get(booking=held)
    from payments import services as payment_services

    payment_services.simulated_pay(payment=payment, now=now)
    held.refresh_from_db()
    assert held.status == BookingStatus.CONFIRMED
    return held


def url(booking: Booking, suffix: str = "") -> str:
    return f"/api/bookings/{booking.manage_token}/{suffix}"


def test_the_token_shows_the_booking(api, held):
    body = api.get(url(held)).json()
    assert body["id"] == str(held.pk)
    assert body["status"] == "pending_payment"
    assert body["payment_url"].startswith("http://testserver/payments/simulated/")


def test_a_confirmed_remote_booking_shows_its_video_link(api, confirmed):
    body = api.get(url(confirmed)).json()
    assert body["status"] == "confirmed"
    assert body["video_url"] == "https://meet.example.com/room"
    assert body["payment_url"] is None


@pytest.mark.parametrize("token", ["nope", "x" * 43, "%00", "a" * 500])
def test_an_unknown_token_is_a_404(api, frozen, token):
    response = api.get(f"/api/bookings/{token}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_cancelling_a_hold_frees_the_slot_and_refunds_nothing(api, held, slot):
    response = api.post(url(held, "cancel/"))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["refund"] == {"amount": 0, "currency": "usd"}
    assert Payment.objects.get().status == PaymentStatus.EXPIRED
    assert hold(api, slot, email="kim@example.com").status_code == 201


def test_cancelling_a_day_or_more_ahead_refunds_in_full(api, confirmed):
    response = api.post(url(confirmed, "cancel/"))
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 9000, "currency": "usd"}
    refund = Refund.objects.get()
    assert refund.amount == 9000 and refund.status == "succeeded"
    assert Payment.objects.get().refunded_amount == 9000


def test_cancelling_inside_24_hours_refunds_nothing(api, confirmed, frozen):
    frozen.shift(timedelta(hours=25))  # the session is 23 hours away
    response = api.post(url(confirmed, "cancel/"))
    assert response.status_code == 200
    assert response.json()["refund"] == {"amount": 0, "currency": "usd"}
    assert not Refund.objects.exists()


def test_cancelling_twice_is_harmless(api, confirmed):
    first = api.post(url(confirmed, "cancel/")).json()
    second = api.post(url(confirmed, "cancel/"))
    assert second.status_code == 200
    assert second.json()["refund"] == first["refund"]
    assert Refund.objects.count() == 1


def test_an_expired_hold_cannot_be_cancelled(api, held, now):
    services.bookings_expire_holds(now=now + timedelta(hours=1))
    response = api.post(url(held, "cancel/"))
    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"


def test_rescheduling_moves_the_booking_and_raises_the_sequence(api, confirmed, tutor, remote, now):
    old = confirmed.slot
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    response = api.post(url(confirmed, "reschedule/"), {"slot": other.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["slot"] == other.pk
    assert response.json()["start"] == other.start.isoformat().replace("+00:00", "Z")
    confirmed.refresh_from_db()
    assert confirmed.slot == other
    assert confirmed.sequence == 1
    assert confirmed.price_amount == 9000
    assert confirmed.events.last().reason == "rescheduled"
    # The old slot is open again, the new one is not.
    ids = [s["id"] for s in api.get("/api/slots/", {"tutor": "ada"}).json()["results"]]
    assert old.pk in ids
    assert other.pk not in ids


def test_rescheduling_to_a_taken_slot_is_a_409(api, confirmed, tutor, remote, now):
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    assert hold(api, other, email="kim@example.com").status_code == 201
    response = api.post(url(confirmed, "reschedule/"), {"slot": other.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"


def test_rescheduling_inside_the_refund_window_is_refused(
    api, confirmed, tutor, remote, now, frozen
):
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    frozen.shift(timedelta(hours=30))
    response = api.post(url(confirmed, "reschedule/"), {"slot": other.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "reschedule_window_closed"


def test_rescheduling_a_hold_is_refused(api, held, tutor, remote, now):
    other = make_slot(tutor, now + timedelta(days=5), remote=remote)
    response = api.post(url(held, "reschedule/"), {"slot": other.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_reschedulable"


def test_rescheduling_to_an_unknown_slot_is_a_400(api, confirmed):
    response = api.post(url(confirmed, "reschedule/"), {"slot": 987654}, format="json")
    assert response.status_code == 400
    assert "slot" in response.json()["fields"]


def test_the_invite_is_an_icalendar_event_matching_the_booking(api, confirmed):
    response = api.get(url(confirmed, "invite.ics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "method=REQUEST" in response["Content-Type"]
    cal = icalendar.Calendar.from_ical(response.content)
    assert cal["METHOD"] == "REQUEST"
    (event,) = cal.walk("VEVENT")
    assert event["UID"] == confirmed.calendar_uid
    assert event.decoded("DTSTART") == confirmed.slot.start
    assert event.decoded("DTEND") == confirmed.slot.end
    assert event.decoded("SEQUENCE") == 0
    assert str(event["ORGANIZER"]) == "mailto:ada@example.com"
    assert str(event["ATTENDEE"]) == "mailto:sam@example.com"
    assert event["LOCATION"] == "https://meet.example.com/room"
    assert event.walk("VALARM")


def test_a_cancelled_bookings_invite_is_a_cancel_with_a_higher_sequence(api, confirmed):
    api.post(url(confirmed, "cancel/"))
    response = api.get(url(confirmed, "invite.ics"))
    cal = icalendar.Calendar.from_ical(response.content)
    assert cal["METHOD"] == "CANCEL"
    (event,) = cal.walk("VEVENT")
    assert event["STATUS"] == "CANCELLED"
    assert event.decoded("SEQUENCE") == 1
    assert event["UID"] == confirmed.calendar_uid
