"""The Django admin as an attacker would use it: a staff tutor probing other tutors'
rows, and pages that could show a manage or feed token (to anyone, superusers too)."""

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from bookings import services
from bookings.models import (
    AvailabilityRule,
    BlockedPeriod,
    Booking,
    BookingEvent,
    BookingStatus,
    Notification,
    NotificationKind,
    Offering,
    Recipient,
    Slot,
    SlotRemoval,
    Tutor,
)
from payments.models import Payment, Provider, Refund, StripeEvent
from tests.bookings.test_materialise import book
from tests.conftest import add_offerings, make_series, make_slot

pytestmark = pytest.mark.django_db


def staff(tutor: Tutor) -> Client:
    tutor.user.is_staff = True
    tutor.user.save()
    tutor.user.groups.add(services.tutor_group())
    client = Client(raise_request_exception=False)
    client.force_login(tutor.user)
    return client


@pytest.fixture
def tutor_client(tutor: Tutor) -> Client:
    return staff(tutor)


@pytest.fixture
def superuser_client(db: None) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


class Theirs:
    """Another tutor's booking with everything that hangs on it."""

    def __init__(self, tutor: Tutor, booking: Booking, payment: Payment, event: StripeEvent):
        self.tutor, self.booking, self.payment, self.event = tutor, booking, payment, event
        self.refund = payment.refunds.get()
        self.token = booking.manage_token


@pytest.fixture
def theirs(make_tutor: Any, now: datetime) -> Theirs:
    other = make_tutor(slug="bo", display_name="Bo Other", email="bo@example.com")
    remote, _ = add_offerings(other)
    booking = book(make_slot(other, now + timedelta(days=3), remote=remote))
    booking.student_email = "their-student@example.com"
    booking.save()
    return_url = f"http://testserver/payments/return/{booking.manage_token}/"
    payment = Payment.objects.create(
        booking=booking,
        provider=Provider.SIMULATED,
        amount=9000,
        currency="usd",
        status="paid",
        checkout_session_id="cs_test_theirs",
        checkout_url=f"http://testserver/payments/simulated/{booking.pk}/",
        payment_intent_id="pi_theirs",
        last_error=f"card declined at {return_url}",
    )
    Refund.objects.create(
        payment=payment,
        amount=9000,
        reason="cancelled by tutor",
        idempotency_key="refund-theirs",
        last_error=f"retry {booking.manage_token}",
    )
    event = StripeEvent.objects.create(
        event_id="evt_theirs",
        type="checkout.session.completed",
        payload={
            "id": "evt_theirs",
            "data": {
                "object": {
                    "id": "cs_test_theirs",
                    "success_url": return_url + "?session_id={CHECKOUT_SESSION_ID}",
                    "cancel_url": return_url + "?cancelled=1",
                    "metadata": {
                        "booking_id": str(booking.pk),
                        "manage_token": booking.manage_token,
                    },
                    "client_reference_id": booking.manage_token,
                    "return_to": quote(return_url, safe=""),
                }
            },
        },
        outcome=f"confirmed via {return_url}",
    )
    BookingEvent.objects.create(
        booking=booking,
        to_status=BookingStatus.CONFIRMED,
        actor="payment",
        reason="paid",
        data={"manage_url": booking.manage_url, "token": booking.manage_token},
        at=now,
    )
    Notification.objects.create(
        booking=booking,
        kind=NotificationKind.CONFIRMED,
        recipient=Recipient.STUDENT,
        key="0",
        context={"start": booking.slot.start.isoformat(), "link": booking.manage_url},
        due_at=now,
        state="failed",
        last_error=f"SMTP 550 rejected body containing {booking.manage_url}",
    )
    return Theirs(other, booking, payment, event)


def body(response: Any) -> str:
    return response.content.decode()


# --- defect 1: other tutors' money, and secrets on pages -----------------------------------


def test_a_tutor_cannot_see_another_tutors_payments(tutor_client, theirs):
    page = tutor_client.get("/admin/payments/payment/")
    assert page.status_code == 200
    assert "their-student@example.com" not in body(page)
    assert "0 payments" in body(page)
    change = tutor_client.get(f"/admin/payments/payment/{theirs.payment.pk}/change/")
    assert change.status_code in (302, 404)
    assert theirs.token not in body(change)


def test_a_tutor_sees_their_own_payments(tutor_client, tutor, remote, now):
    mine = book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    payment = Payment.objects.create(
        booking=mine, provider=Provider.SIMULATED, amount=9000, currency="usd"
    )
    page = tutor_client.get("/admin/payments/payment/")
    assert "1 payment" in body(page)
    assert tutor_client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200


def test_a_tutor_cannot_see_another_tutors_refunds(tutor_client, theirs):
    page = tutor_client.get("/admin/payments/refund/")
    assert page.status_code == 200
    assert "0 refunds" in body(page)
    change = tutor_client.get(f"/admin/payments/refund/{theirs.refund.pk}/change/")
    assert change.status_code in (302, 404)


def test_a_tutor_cannot_open_stripe_events(tutor_client, theirs):
    assert tutor_client.get("/admin/payments/stripeevent/").status_code == 403
    change = tutor_client.get(f"/admin/payments/stripeevent/{theirs.event.pk}/change/")
    assert change.status_code == 403
    assert theirs.token not in body(change)
    history = tutor_client.get(f"/admin/payments/stripeevent/{theirs.event.pk}/history/")
    assert history.status_code == 403
    assert "stripeevent" not in body(tutor_client.get("/admin/"))


def test_a_superuser_reads_stripe_events_with_the_manage_token_redacted(superuser_client, theirs):
    page = superuser_client.get(f"/admin/payments/stripeevent/{theirs.event.pk}/change/")
    assert page.status_code == 200
    assert "cs_test_theirs" in body(page)
    assert "/payments/return/[redacted]/" in body(page)
    assert theirs.token not in body(page)
    assert quote(theirs.token) not in body(page)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/bookings/booking/",
        "/admin/bookings/booking/{booking}/change/",
        "/admin/bookings/booking/{booking}/history/",
        "/admin/bookings/notification/",
        "/admin/bookings/notification/{notification}/change/",
        "/admin/bookings/tutor/",
        "/admin/bookings/tutor/{tutor}/change/",
        "/admin/payments/payment/",
        "/admin/payments/payment/{payment}/change/",
        "/admin/payments/refund/",
        "/admin/payments/refund/{refund}/change/",
        "/admin/payments/stripeevent/",
        "/admin/payments/stripeevent/{event}/change/",
        "/admin/bookings/booking/?q={token}",
        "/admin/bookings/notification/?q={token}",
    ],
)
def test_no_admin_page_shows_a_manage_token_or_a_feed_token_even_to_a_superuser(
    superuser_client, theirs, path
):
    url = path.format(
        booking=theirs.booking.pk,
        notification=theirs.booking.notifications.get().pk,
        tutor=theirs.tutor.pk,
        payment=theirs.payment.pk,
        refund=theirs.refund.pk,
        event=theirs.event.pk,
        token=theirs.token,
    )
    page = superuser_client.get(url)
    assert page.status_code == 200
    text = body(page)
    if "?q=" in url:
        # The search box (and its facet links) echo what was typed, and the link holds
        # its key; nothing else may show either.
        text = text.replace(theirs.token, "")
    secrets = [
        theirs.token,
        theirs.booking.manage_key,
        theirs.tutor.feed_token,
        theirs.tutor.feed_key,
        theirs.payment.checkout_url,
    ]
    for secret in secrets:
        assert secret not in text, f"{secret[:8]}... on {path}"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/bookings/booking/?manage_key__startswith={prefix}",
        "/admin/bookings/booking/?manage_legacy_digest__startswith=a",
        "/admin/bookings/tutor/?feed_key__startswith={prefix}",
        "/admin/bookings/tutor/?feed_legacy_digest__startswith=a",
        "/admin/bookings/notification/?context__contains={prefix}",
        "/admin/bookings/notification/?last_error__contains={prefix}",
        "/admin/bookings/booking/?events__data__contains={prefix}",
        "/admin/payments/payment/?checkout_url__contains=simulated",
        "/admin/payments/payment/?booking__manage_key__startswith={prefix}",
        "/admin/payments/stripeevent/?payload__contains={prefix}",
        "/admin/bookings/booking/?_to_field=manage_key&_popup=1",
        "/admin/bookings/tutor/?_to_field=feed_key&_popup=1",
    ],
)
def test_no_admin_filter_can_probe_a_secret_character_by_character(superuser_client, theirs, path):
    page = superuser_client.get(path.format(prefix=theirs.token[:3]))
    assert page.status_code == 400


def test_a_tutor_cannot_probe_a_secret_in_their_own_rows_either(tutor_client, tutor, remote, now):
    mine = book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    page = tutor_client.get(
        f"/admin/bookings/booking/?manage_key__startswith={mine.manage_key[:3]}"
    )
    assert page.status_code == 400
    feed = tutor_client.get(f"/admin/bookings/tutor/?feed_key__startswith={tutor.feed_key[:3]}")
    assert feed.status_code == 400


def test_a_tutor_cannot_find_another_tutors_rows_by_search_filter_or_autocomplete(
    tutor_client, theirs
):
    searches = [
        "/admin/bookings/booking/?q=their-student",
        f"/admin/bookings/booking/?tutor__id__exact={theirs.tutor.pk}",
        "/admin/payments/payment/?q=cs_test_theirs",
        "/admin/payments/payment/?q=their-student",
        "/admin/bookings/notification/?q=their-student",
        f"/admin/bookings/slot/?tutor={theirs.tutor.pk}",
        f"/admin/bookings/offering/?tutor__id__exact={theirs.tutor.pk}",
    ]
    for url in searches:
        page = tutor_client.get(url)
        assert page.status_code in (200, 302, 400), url
        assert "their-student@example.com" not in body(page)
        assert "cs_test_theirs</" not in body(page)
        assert not re.search(r"[1-9]\d* (booking|payment|notification|slot|offering)", body(page))
    autocomplete = tutor_client.get(
        "/admin/autocomplete/",
        {"app_label": "payments", "model_name": "payment", "field_name": "booking", "term": ""},
    )
    assert autocomplete.status_code in (200, 403)
    assert str(theirs.booking.pk) not in body(autocomplete)


def their_rule(theirs: Theirs) -> AvailabilityRule:
    return services.rule_save(
        tutor=theirs.tutor,
        now=datetime(2026, 12, 2, 15, tzinfo=UTC),
        weekdays=[2],
        start_time=time(9),
        end_time=time(10),
        offerings=[theirs.booking.offering],
    )


def test_a_tutor_cannot_open_another_tutors_rows_by_id(tutor_client, theirs):
    rule = their_rule(theirs)
    paths = [
        f"/admin/bookings/booking/{theirs.booking.pk}/change/",
        f"/admin/bookings/booking/{theirs.booking.pk}/history/",
        f"/admin/bookings/booking/{theirs.booking.pk}/change/?_changelist_filters=q%3D",
        f"/admin/bookings/slot/{theirs.booking.slot_id}/change/",
        f"/admin/bookings/slot/{theirs.booking.slot_id}/history/",
        f"/admin/bookings/offering/{theirs.booking.offering_id}/change/",
        f"/admin/bookings/offering/{theirs.booking.offering_id}/history/",
        f"/admin/bookings/availabilityrule/{rule.pk}/change/",
        f"/admin/bookings/availabilityrule/{rule.pk}/delete/",
        f"/admin/bookings/tutor/{theirs.tutor.pk}/change/",
        f"/admin/bookings/tutor/{theirs.tutor.pk}/history/",
        f"/admin/payments/payment/{theirs.payment.pk}/history/",
        f"/admin/payments/refund/{theirs.refund.pk}/history/",
    ]
    for path in paths:
        page = tutor_client.get(path, follow=True)
        assert page.status_code in (200, 403, 404), path
        assert "Bo Other" not in body(page), path
        assert "their-student" not in body(page), path
    assert AvailabilityRule.objects.filter(pk=rule.pk).exists()


def test_a_tutor_cannot_act_on_another_tutors_rows_from_their_own_lists(
    tutor_client, theirs, frozen
):
    rule = their_rule(theirs)
    posts = [
        ("/admin/bookings/booking/", "cancel", theirs.booking.pk),
        ("/admin/bookings/slot/", "withdraw", theirs.booking.slot_id),
        ("/admin/bookings/availabilityrule/", "delete_selected", rule.pk),
        ("/admin/bookings/notification/", "retry", theirs.booking.notifications.get().pk),
    ]
    for path, action, pk in posts:
        response = tutor_client.post(
            path, {"action": action, "_selected_action": [str(pk)], "post": "yes"}
        )
        assert response.status_code < 500
    theirs.booking.refresh_from_db()
    assert theirs.booking.status == BookingStatus.CONFIRMED
    assert Slot.objects.get(pk=theirs.booking.slot_id).removed_at is None
    assert AvailabilityRule.objects.filter(pk=rule.pk).exists()
    assert theirs.booking.notifications.get().state == "failed"
    delete = tutor_client.post(
        f"/admin/bookings/availabilityrule/{rule.pk}/delete/", {"post": "yes"}
    )
    assert delete.status_code in (302, 404)
    assert AvailabilityRule.objects.filter(pk=rule.pk).exists()


# --- defect 2: slot times are not edited in the admin ---------------------------------------


def test_a_tutor_cannot_move_a_booked_slot_in_the_admin(tutor_client, tutor, remote, now):
    slot = make_slot(tutor, now + timedelta(days=2), remote=remote)
    booking = book(slot)
    later = slot.start + timedelta(hours=5)
    response = tutor_client.post(
        f"/admin/bookings/slot/{slot.pk}/change/",
        {
            "start_0": later.strftime("%Y-%m-%d"),
            "start_1": later.strftime("%H:%M:%S"),
            "end_0": later.strftime("%Y-%m-%d"),
            "end_1": (later + timedelta(hours=1)).strftime("%H:%M:%S"),
            "remote_offering": remote.pk,
        },
    )
    assert response.status_code == 403
    slot.refresh_from_db()
    booking.refresh_from_db()
    assert slot.start == now + timedelta(days=2)
    assert booking.sequence == 0
    page = tutor_client.get(f"/admin/bookings/slot/{slot.pk}/change/")
    assert page.status_code == 200
    assert 'name="start_0"' not in body(page)


def test_a_superuser_adding_an_overlapping_slot_gets_a_form_error(superuser_client, tutor, remote):
    start = datetime(2026, 12, 10, 15, tzinfo=UTC)
    make_slot(tutor, start, remote=remote)
    clash = start + timedelta(minutes=30)
    response = superuser_client.post(
        "/admin/bookings/slot/add/",
        {
            "tutor": tutor.pk,
            "start_0": clash.strftime("%Y-%m-%d"),
            "start_1": clash.strftime("%H:%M:%S"),
            "remote_offering": remote.pk,
        },
    )
    assert response.status_code == 200
    assert "overlaps" in body(response)
    assert Slot.objects.filter(tutor=tutor).count() == 1


def test_a_superuser_adds_a_one_off_slot_through_the_service(superuser_client, tutor, remote):
    start = datetime(2026, 12, 10, 15, tzinfo=UTC)
    response = superuser_client.post(
        "/admin/bookings/slot/add/",
        {
            "tutor": tutor.pk,
            "start_0": start.strftime("%Y-%m-%d"),
            "start_1": start.strftime("%H:%M:%S"),
            "remote_offering": remote.pk,
        },
    )
    assert response.status_code == 302
    slot = Slot.objects.get(tutor=tutor)
    assert slot.end == start + timedelta(minutes=60)
    assert slot.source == "one_off"


@pytest.mark.parametrize(
    "start", [("9999-12-31", "23:30:00"), ("0001-01-01", "00:00:00"), ("2020-01-01", "10:00:00")]
)
def test_a_slot_at_the_ends_of_the_calendar_is_a_form_error(superuser_client, tutor, remote, start):
    response = superuser_client.post(
        "/admin/bookings/slot/add/",
        {"tutor": tutor.pk, "start_0": start[0], "start_1": start[1], "remote_offering": remote.pk},
    )
    assert response.status_code == 200
    assert "errornote" in body(response)
    assert not Slot.objects.exists()


def test_a_tutor_cannot_edit_a_students_email_and_receive_their_manage_link(
    tutor_client, tutor, remote, now
):
    booking = book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    response = tutor_client.post(
        f"/admin/bookings/booking/{booking.pk}/change/",
        {"student_name": "S", "student_email": "tutor-himself@example.com", "notes": ""},
    )
    assert response.status_code == 403
    booking.refresh_from_db()
    assert booking.student_email == "s@example.com"


def test_a_tutor_still_cancels_from_the_booking_list(tutor_client, tutor, remote, now, frozen):
    booking = book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    response = tutor_client.post(
        "/admin/bookings/booking/",
        {"action": "cancel", "_selected_action": [str(booking.pk)]},
    )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED


# --- defect 3: the profile stays with its account ------------------------------------------


def tutor_form(tutor: Tutor, **changes: Any) -> dict[str, Any]:
    data = {
        "slug": tutor.slug,
        "display_name": tutor.display_name,
        "headline": tutor.headline,
        "bio": tutor.bio,
        "email": tutor.email,
        "timezone": tutor.timezone,
        "currency": tutor.currency,
        "min_notice_minutes": tutor.min_notice_minutes,
        "travel_buffer_minutes": tutor.travel_buffer_minutes,
        "full_refund_hours": tutor.full_refund_hours,
        "max_series_weeks": tutor.max_series_weeks,
        "is_active": "on",
    }
    data.update(changes)
    return data


def test_a_tutor_cannot_hand_their_profile_to_another_account(tutor_client, tutor, theirs):
    stranger = get_user_model().objects.create_user("stranger", password="pw-for-tests")
    page = tutor_client.get(f"/admin/bookings/tutor/{tutor.pk}/change/")
    assert page.status_code == 200
    assert "stranger" not in body(page)
    assert theirs.tutor.user.username not in body(page)
    response = tutor_client.post(
        f"/admin/bookings/tutor/{tutor.pk}/change/", tutor_form(tutor, user=stranger.pk)
    )
    assert response.status_code == 302
    tutor.refresh_from_db()
    assert tutor.user.username == "tutor1"


def test_a_tutor_cannot_add_a_tutor_profile(tutor_client):
    assert tutor_client.get("/admin/bookings/tutor/add/").status_code == 403


def test_a_tutor_taking_a_used_slug_gets_a_form_error(tutor_client, tutor, theirs):
    response = tutor_client.post(
        f"/admin/bookings/tutor/{tutor.pk}/change/", tutor_form(tutor, slug=theirs.tutor.slug)
    )
    assert response.status_code == 200
    assert "already exists" in body(response)
    tutor.refresh_from_db()
    assert tutor.slug == "ada"


def test_a_superuser_picks_the_account_only_among_accounts_without_a_profile(
    superuser_client, tutor
):
    get_user_model().objects.create_user("free-account", password="pw-for-tests")
    page = body(superuser_client.get("/admin/bookings/tutor/add/"))
    assert "free-account" in page
    assert f">{tutor.user.username}<" not in page
    change = body(superuser_client.get(f"/admin/bookings/tutor/{tutor.pk}/change/"))
    assert 'name="user"' not in change


@pytest.mark.parametrize(
    "changes",
    [
        {"display_name": "Ada\x00Park"},
        {"display_name": "Ada\x1bPark"},
        {"headline": "line\nbreak"},
        {"bio": "x" * 100_000},
        {"min_notice_minutes": "99999999999999999999"},
        {"min_notice_minutes": str(2**63)},
        {"travel_buffer_minutes": "-1"},
        {"timezone": "Mars/Olympus"},
        {"slug": "a" * 500},
    ],
)
def test_odd_input_on_the_tutor_form_is_a_form_error(tutor_client, tutor, changes):
    response = tutor_client.post(
        f"/admin/bookings/tutor/{tutor.pk}/change/", tutor_form(tutor, **changes)
    )
    assert response.status_code == 200
    assert "errornote" in body(response)


def test_a_zone_change_in_the_admin_rematerialises_the_slots(
    tutor_client, tutor, weekly_rule, frozen
):
    def local_hours() -> set[int]:
        return {
            s.start.astimezone(tutor.zone).hour
            for s in Slot.objects.filter(tutor=tutor, removed_at__isnull=True)
        }

    assert local_hours() == {18, 19, 20}
    response = tutor_client.post(
        f"/admin/bookings/tutor/{tutor.pk}/change/", tutor_form(tutor, timezone="Europe/Paris")
    )
    assert response.status_code == 302
    tutor.refresh_from_db()
    assert tutor.timezone == "Europe/Paris"
    assert local_hours() == {18, 19, 20}


# --- defect 4: every save goes through a service -------------------------------------------


def rule_form(chosen: list[Offering], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "weekdays": ["2", "4"],
        "start_time": "18:00",
        "end_time": "21:00",
        "offerings": [o.pk for o in chosen],
        "valid_from": "",
        "valid_until": "",
        "is_active": "on",
    }
    data.update(changes)
    return data


def test_a_rule_added_in_the_admin_fills_the_horizon(tutor_client, tutor, remote, frozen):
    response = tutor_client.post("/admin/bookings/availabilityrule/add/", rule_form([remote]))
    assert response.status_code == 302
    rule = AvailabilityRule.objects.get(tutor=tutor)
    assert rule.weekdays == [2, 4]
    assert Slot.objects.filter(rule=rule, removed_at__isnull=True).count() >= 16 * 3


@pytest.mark.parametrize(
    "changes",
    [
        {"weekdays": "abc"},
        {"weekdays": "5.5"},
        {"weekdays": ["0"]},
        {"weekdays": ["8"]},
        {"weekdays": ""},
        {"end_time": "17:00"},
        {"valid_from": "2027-01-10", "valid_until": "2027-01-01"},
        {"valid_until": "99999-12-31"},
        {"offerings": []},
    ],
)
def test_a_bad_rule_in_the_admin_is_a_form_error(tutor_client, tutor, remote, frozen, changes):
    response = tutor_client.post(
        "/admin/bookings/availabilityrule/add/", rule_form([remote], **changes)
    )
    assert response.status_code == 200
    assert "errornote" in body(response)
    assert not AvailabilityRule.objects.filter(tutor=tutor).exists()


def test_offerings_of_two_lengths_in_one_rule_are_a_form_error(tutor_client, tutor, remote, frozen):
    _, long_in_person = add_offerings(tutor, minutes=90)
    response = tutor_client.post(
        "/admin/bookings/availabilityrule/add/", rule_form([remote, long_in_person])
    )
    assert response.status_code == 200
    assert "Offerings of different durations." in body(response)
    assert not AvailabilityRule.objects.exists()


@pytest.mark.parametrize("changes", [{"valid_from": "0001-01-01"}, {"valid_until": "9999-12-31"}])
def test_rule_dates_at_the_ends_of_the_calendar_are_a_form_error(
    tutor_client, tutor, remote, frozen, changes
):
    response = tutor_client.post(
        "/admin/bookings/availabilityrule/add/", rule_form([remote], **changes)
    )
    assert response.status_code == 200
    assert "errornote" in body(response)
    assert not AvailabilityRule.objects.exists()


def test_a_tutor_cannot_put_another_tutors_offering_in_a_rule(tutor_client, remote, theirs):
    response = tutor_client.post(
        "/admin/bookings/availabilityrule/add/",
        rule_form([remote, theirs.booking.offering]),
    )
    assert response.status_code == 200
    assert not AvailabilityRule.objects.exists()


def test_deleting_rules_from_the_list_withdraws_their_slots(tutor_client, weekly_rule, frozen):
    response = tutor_client.post(
        "/admin/bookings/availabilityrule/",
        {"action": "delete_selected", "_selected_action": [weekly_rule.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.filter(removed_at__isnull=True).exists()


def test_an_offering_used_by_a_rule_keeps_its_length_in_the_admin(
    tutor_client, remote, weekly_rule, frozen
):
    response = tutor_client.post(
        f"/admin/bookings/offering/{remote.pk}/change/",
        {
            "mode": "remote",
            "title": remote.title,
            "description": "",
            "duration_minutes": 90,
            "price_amount": remote.price_amount,
            "currency": "usd",
            "video_url": remote.video_url,
            "place_name": "",
            "place_address": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "add a new one for another length" in body(response)
    remote.refresh_from_db()
    assert remote.duration_minutes == 60


@pytest.mark.parametrize(
    "changes",
    [
        {"video_url": ""},
        {"duration_minutes": "99999999999"},
        {"price_amount": "99999999999999999999"},
        {"title": "Python\x07"},
        {"video_url": "https://meet.example.com/a\x01b"},
    ],
)
def test_a_bad_offering_in_the_admin_is_a_form_error(tutor_client, tutor, changes):
    data = {
        "mode": "remote",
        "title": "Python",
        "description": "",
        "duration_minutes": 60,
        "price_amount": 9000,
        "currency": "usd",
        "video_url": "https://meet.example.com/room",
        "place_name": "",
        "place_address": "",
        "is_active": "on",
        **changes,
    }
    response = tutor_client.post("/admin/bookings/offering/add/", data)
    assert response.status_code == 200
    assert not Offering.objects.filter(tutor=tutor).exists()


def test_an_offering_added_in_the_admin_is_the_tutors_own(tutor_client, tutor):
    response = tutor_client.post(
        "/admin/bookings/offering/add/",
        {
            "mode": "in_person",
            "title": "Python at the library",
            "description": "Bring a laptop.\nAnd a charger.",
            "duration_minutes": 45,
            "price_amount": 5000,
            "currency": "usd",
            "video_url": "",
            "place_name": "NYPL",
            "place_address": "476 5th Ave",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Offering.objects.get(title="Python at the library").tutor == tutor


def test_a_block_added_in_the_admin_withdraws_the_slots_inside_it(
    tutor_client, tutor, weekly_rule, frozen, now
):
    day = now + timedelta(days=6)  # Tuesday 8 December
    response = tutor_client.post(
        "/admin/bookings/blockedperiod/add/",
        {
            "start_0": day.strftime("%Y-%m-%d"),
            "start_1": "00:00:00",
            "end_0": (day + timedelta(days=1)).strftime("%Y-%m-%d"),
            "end_1": "12:00:00",
            "reason": "holiday",
        },
    )
    assert response.status_code == 302
    block = BlockedPeriod.objects.get(tutor=tutor)
    assert (
        Slot.objects.filter(
            tutor=tutor, start__gte=block.start, start__lt=block.end, removed_at__isnull=True
        ).count()
        == 0
    )
    assert Slot.objects.filter(removed_reason=SlotRemoval.BLOCKED).exists()
    response = tutor_client.post(
        "/admin/bookings/blockedperiod/",
        {"action": "delete_selected", "_selected_action": [block.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Slot.objects.filter(
        removed_reason=SlotRemoval.BLOCKED, removed_at__isnull=False
    ).exists()


@pytest.mark.parametrize(
    "start, end",
    [
        (("2020-01-01", "00:00:00"), ("2020-01-02", "00:00:00")),  # already over
        (("2027-01-02", "00:00:00"), ("2027-01-01", "00:00:00")),  # ends before it starts
        (("9999-12-31", "00:00:00"), ("9999-12-31", "23:59:59")),
        (("0001-01-01", "00:00:00"), ("0001-01-01", "23:59:59")),
        (("10000-01-01", "00:00:00"), ("10000-01-02", "00:00:00")),
    ],
)
def test_odd_blocks_in_the_admin_are_never_a_500(tutor_client, tutor, frozen, start, end):
    response = tutor_client.post(
        "/admin/bookings/blockedperiod/add/",
        {"start_0": start[0], "start_1": start[1], "end_0": end[0], "end_1": end[1]},
    )
    assert response.status_code in (200, 302)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/bookings/slot/?start__year=9999&start__month=12&start__day=31",
        "/admin/bookings/slot/?start__year=9999&start__month=12",
        "/admin/bookings/slot/?start__year=9999",
        "/admin/bookings/slot/?start__year=0",
        "/admin/bookings/slot/?start__year=99999999999999999999",
        "/admin/bookings/slot/?start__gte=9999-12-31",
        "/admin/bookings/slot/?id=99999999999999999999",
        "/admin/bookings/slot/99999999999999999999/change/",
        "/admin/bookings/slot/-1/change/",
        "/admin/bookings/booking/not-a-uuid/change/",
        "/admin/bookings/booking/?q=%00",
        "/admin/bookings/booking/?p=99999999999999999999",
        "/admin/bookings/booking/?o=99",
        "/admin/payments/payment/?amount__gt=99999999999999999999",
        "/admin/bookings/notification/?due_at__gte=0001-01-01",
    ],
)
def test_odd_admin_urls_are_never_a_500(tutor_client, tutor, remote, now, path):
    book(make_slot(tutor, now + timedelta(days=2), remote=remote))
    assert tutor_client.get(path).status_code < 500


@pytest.mark.parametrize(
    "path, data",
    [
        ("/admin/bookings/availabilityrule/add/", {"offerings": ["99999999999999999999"]}),
        ("/admin/auth/group/add/", {"name": "g", "permissions": ["99999999999999999999"]}),
    ],
)
def test_a_choice_id_past_64_bits_is_a_form_error(superuser_client, tutor, path, data):
    response = superuser_client.post(path, {**rule_form([]), "tutor": tutor.pk, **data})
    assert response.status_code == 200
    assert "errornote" in body(response)


# --- weekly series --------------------------------------------------------------------------


def test_a_tutor_sees_only_their_own_series(tutor_client, tutor, remote, theirs, now):
    mine = make_series(tutor, remote, now + timedelta(days=1), weeks=2, name="Mia Mine")
    their_offering = theirs.booking.offering
    other = make_series(
        theirs.tutor, their_offering, now + timedelta(days=5), weeks=3, name="Tia Theirs"
    )

    listing = tutor_client.get("/admin/bookings/bookingseries/")
    mine_page = tutor_client.get(f"/admin/bookings/bookingseries/{mine.pk}/change/")
    their_page = tutor_client.get(f"/admin/bookings/bookingseries/{other.pk}/change/", follow=True)

    assert listing.status_code == 200
    assert "Mia Mine" in body(listing)
    assert "Tia Theirs" not in body(listing)
    assert mine_page.status_code == 200
    assert "Week 2:" in body(mine_page)
    assert "Tia Theirs" not in body(their_page)
    assert their_page.status_code in (200, 404)  # the admin redirects home with a message
    searched = tutor_client.get("/admin/bookings/bookingseries/?q=Tia")
    assert "Tia Theirs" not in body(searched)


def test_no_series_page_shows_its_link_key_even_to_a_superuser(
    superuser_client, tutor, remote, now
):
    series = make_series(tutor, remote, now + timedelta(days=1), weeks=2)

    pages = [
        superuser_client.get("/admin/bookings/bookingseries/"),
        superuser_client.get(f"/admin/bookings/bookingseries/{series.pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        assert series.manage_key not in body(page)
        assert series.manage_token not in body(page)
    probe = f"/admin/bookings/bookingseries/?manage_key__startswith={series.manage_key[:3]}"
    assert superuser_client.get(probe).status_code == 400
