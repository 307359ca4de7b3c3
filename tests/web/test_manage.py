"""The student's private page behind the manage link: states, cancel, reschedule."""

import json
from datetime import timedelta

import pytest

from bookings import services
from bookings.models import Booking, BookingStatus
from payments.models import Refund
from tests.conftest import make_slot

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(frozen, slot, now) -> Booking:
    return hold_slot(slot, now=now)


@pytest.fixture
def confirmed(held, now) -> Booking:
    return confirm(held, now=now)


def test_a_confirmed_booking_shows_its_details_invite_and_links(client, confirmed):
    response = client.get(confirmed.manage_path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Booking confirmed" in html
    assert "Friday, December 4, 2026 at 10:00 AM" in html  # the student's zone: New York
    assert "https://meet.example.com/room" in html
    assert f'href="/api/bookings/{confirmed.manage_token}/invite.ics"' in html
    assert f'href="{confirmed.manage_path}reschedule/"' in html
    assert f'href="{confirmed.manage_path}cancel/"' in html
    assert f'value="http://testserver{confirmed.manage_path}"' in html
    assert "Decorators, please" in html


def test_an_in_person_booking_shows_where_to_meet_with_a_map(client, frozen, slot, now):
    booking = confirm(hold_slot(slot, mode="in_person", now=now), now=now)
    html = client.get(booking.manage_path).content.decode()
    assert "Bryant Park Cafe" in html and "40 W 40th St, New York, NY 10018" in html
    assert "https://www.openstreetmap.org/search?query=" in html
    assert "meet.example.com" not in html


def test_a_pending_booking_updates_itself_and_links_to_the_checkout(client, held):
    html = client.get(held.manage_path).content.decode()
    assert "Payment pending" in html
    assert f'data-poll="/api/bookings/{held.manage_token}/"' in html
    assert '<meta http-equiv="refresh" content="10">' in html
    assert 'href="http://testserver/payments/simulated/' in html
    assert "Held for you until" in html
    assert "meet.example.com" not in html  # the call link comes with payment


def test_a_hold_past_its_time_shows_hold_expired_with_a_way_back(client, held, frozen):
    frozen.shift(timedelta(minutes=31))
    html = client.get(held.manage_path).content.decode()
    assert "Hold expired" in html
    assert 'href="/t/ada/?tz=America/New_York"' in html
    assert "Continue to payment" not in html


def test_an_expired_hold_offers_the_same_time_again_while_it_is_open(client, held, frozen, now):
    frozen.shift(timedelta(minutes=31))
    services.bookings_expire_holds(now=now + timedelta(minutes=31))
    html = client.get(held.manage_path).content.decode()
    assert "Hold expired" in html
    assert f"/t/ada/book/?slot={held.slot_id}&amp;mode=remote" in html


def test_an_unknown_link_is_a_friendly_404(client, frozen, db):
    response = client.get("/bookings/not-a-real-token-at-all/")
    assert response.status_code == 404
    assert b"check that you have the whole address" in response.content


def test_the_cancel_page_says_the_full_refund_before_confirming(client, confirmed):
    response = client.get(f"{confirmed.manage_path}cancel/")
    assert response.status_code == 200
    assert b"You get a full refund of $90." in response.content
    confirmed.refresh_from_db()
    assert confirmed.status == BookingStatus.CONFIRMED  # looking changes nothing


def test_the_cancel_page_warns_when_nothing_is_refunded(client, confirmed, frozen):
    frozen.shift(timedelta(hours=30))  # 18 hours before the start
    html = client.get(f"{confirmed.manage_path}cancel/").content.decode()
    assert "No refund:" in html and "less than 24 hours" in html


def test_cancelling_refunds_per_policy_and_shows_it(client, confirmed):
    response = client.post(f"{confirmed.manage_path}cancel/", follow=True)
    assert response.redirect_chain == [(confirmed.manage_path, 302)]
    html = response.content.decode()
    assert "Booking cancelled" in html
    assert "$90.00 is on its way back to your card." in html
    confirmed.refresh_from_db()
    assert confirmed.status == BookingStatus.CANCELLED
    assert confirmed.refund_amount == 9000
    assert Refund.objects.get().amount == 9000


def test_cancelling_a_hold_charges_nothing_and_frees_the_slot(client, held, slot):
    response = client.post(f"{held.manage_path}cancel/", follow=True)
    assert b"Nothing was charged." in response.content
    held.refresh_from_db()
    assert held.status == BookingStatus.CANCELLED
    assert not Refund.objects.exists()


def test_cancelling_twice_is_harmless(client, confirmed):
    client.post(f"{confirmed.manage_path}cancel/")
    response = client.post(f"{confirmed.manage_path}cancel/")
    assert response.status_code == 302
    assert Refund.objects.count() == 1


def test_a_started_session_cannot_be_cancelled(client, confirmed, frozen):
    frozen.shift(timedelta(days=2, minutes=5))
    html = client.get(f"{confirmed.manage_path}cancel/").content.decode()
    assert "already started" in html
    assert "Yes, cancel" not in html


def test_the_reschedule_page_lists_open_times_of_the_same_mode_and_length(
    client, confirmed, tutor, remote, in_person, now
):
    same = make_slot(tutor, now + timedelta(days=3), remote=remote, in_person=in_person)
    make_slot(tutor, now + timedelta(days=4), in_person=in_person)  # another mode
    make_slot(tutor, now + timedelta(days=5), remote=remote, minutes=90)  # another length

    html = client.get(f"{confirmed.manage_path}reschedule/").content.decode()
    start = html.index('type="application/json">') + len('type="application/json">')
    data = json.loads(html[start : html.index("</script>", start)])
    assert [s["id"] for s in data["slots"]] == [same.pk]


def test_rescheduling_asks_then_moves_the_booking(client, confirmed, tutor, remote, now):
    target = make_slot(tutor, now + timedelta(days=3), remote=remote)
    url = f"{confirmed.manage_path}reschedule/"
    html = client.get(f"{url}?slot={target.pk}").content.decode()
    assert "Move it to this time?" in html
    assert "Saturday, December 5, 2026 at 10:00 AM" in html
    confirmed.refresh_from_db()
    assert confirmed.slot_id != target.pk

    response = client.post(url, {"slot": target.pk}, follow=True)
    assert response.redirect_chain == [(confirmed.manage_path, 302)]
    assert b"Your session has moved." in response.content
    confirmed.refresh_from_db()
    assert confirmed.slot_id == target.pk
    assert confirmed.sequence == 1


def test_rescheduling_to_a_just_taken_time_says_so(client, confirmed, tutor, remote, now):
    target = make_slot(tutor, now + timedelta(days=3), remote=remote)
    hold_slot(target, email="kim@example.com", now=now)
    url = f"{confirmed.manage_path}reschedule/"
    assert b"just taken" in client.get(f"{url}?slot={target.pk}").content
    assert b"just taken" in client.post(url, {"slot": target.pk}).content
    confirmed.refresh_from_db()
    assert confirmed.slot_id != target.pk


def test_rescheduling_closes_inside_the_full_refund_window(client, confirmed, frozen):
    frozen.shift(timedelta(hours=30))
    html = client.get(f"{confirmed.manage_path}reschedule/").content.decode()
    assert "Sessions can be moved up to 24 hours before they start" in html
    assert "picker-data" not in html
    html = client.get(confirmed.manage_path).content.decode()
    assert "reschedule/" not in html


def test_a_hold_cannot_be_rescheduled(client, held):
    html = client.get(f"{held.manage_path}reschedule/").content.decode()
    assert "Only a confirmed booking can be rescheduled." in html
