"""Holding slots can't be gamed: one decision says whether a slot is open (and why not),
everyone is limited in what they can sit on, and a resent form never makes a second hold.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.test import Client

from bookings import services
from bookings.availability import CLOSED
from bookings.models import Actor, Booking, BookingStatus
from payments import services as payment_services
from payments.models import Payment
from tests.bookings.test_concurrency import run_concurrently
from tests.conftest import add_offerings, hold, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Throttles on (tests run with them off) at the given rates."""
    cache.clear()

    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                "holds_ip": None,
                "holds_email": None,
                "manage_ip": None,
                **rates,
            },
        }

    yield set_rates
    cache.clear()


def held(slot, *, mode="remote", email="sam@example.com", now, client=""):
    return services.booking_hold(
        slot_id=slot.pk,
        mode=mode,
        student_name="Sam",
        student_email=email,
        client=client,
        now=now,
    ).booking


def pay(booking: Booking, *, now):
    payment = Payment.objects.get(booking=booking)
    return payment_services.payment_succeeded(
        payment_id=payment.pk,
        now=now,
        received=payment_services.Money(payment.amount, payment.currency),
        source="test",
    )


# --- one decision, with its reason ---------------------------------------------------------


def test_late_money_respects_the_travel_buffer_and_is_refunded(tutor, in_person, now):
    first = make_slot(tutor, now + timedelta(days=2), in_person=in_person)
    next_door = make_slot(tutor, first.end, in_person=in_person)
    late = held(first, mode="in_person", email="late@example.com", now=now)
    later = now + timedelta(minutes=31)
    assert services.booking_expire(booking_id=late.pk, now=later)
    # Someone else books the slot right after it, in person.
    other = held(next_door, mode="in_person", email="kim@example.com", now=later)
    pay(other, now=later)

    settlement = pay(late, now=later + timedelta(minutes=1))

    assert settlement.outcome == "refunded_late"
    late.refresh_from_db()
    assert late.status == BookingStatus.EXPIRED
    event = late.events.order_by("-at", "-id").first()
    assert event is not None and event.to_status == BookingStatus.EXPIRED


def test_late_money_for_a_free_slot_still_confirms(tutor, remote, now):
    slot = make_slot(tutor, now + timedelta(days=2), remote=remote)
    late = held(slot, now=now)
    later = now + timedelta(minutes=31)
    services.booking_expire(booking_id=late.pk, now=later)

    assert pay(late, now=later).outcome == "confirmed"


def test_a_409_names_why_the_slot_is_closed(api, frozen, tutor, in_person, remote, now):
    first = make_slot(tutor, now + timedelta(days=2), in_person=in_person, remote=remote)
    next_door = make_slot(tutor, first.end, in_person=in_person, remote=remote)
    assert hold(api, first, mode="in_person").status_code == 201

    taken = hold(api, first, email="kim@example.com")
    near = hold(api, next_door, mode="in_person", email="lee@example.com")

    assert (taken.status_code, taken.json()["reason"]) == (409, "booked")
    assert (near.status_code, near.json()["reason"]) == (409, "travel_buffer")
    assert near.json()["message"].startswith(CLOSED["travel_buffer"])
    # The tutor is travelling then, whatever the mode.
    remote_too = hold(api, next_door, mode="remote", email="lee@example.com")
    assert (remote_too.status_code, remote_too.json()["reason"]) == (409, "travel_buffer")


def test_in_person_next_to_a_remote_booking_says_remote_is_still_open(
    api, frozen, tutor, in_person, remote, now
):
    first = make_slot(tutor, now + timedelta(days=2), in_person=in_person, remote=remote)
    next_door = make_slot(tutor, first.end, in_person=in_person, remote=remote)
    assert hold(api, first, mode="remote").status_code == 201

    near = hold(api, next_door, mode="in_person", email="lee@example.com")

    assert (near.status_code, near.json()["reason"]) == (409, "travel_buffer")
    assert "remote" in near.json()["message"]
    assert hold(api, next_door, mode="remote", email="lee@example.com").status_code == 201


def test_a_reschedule_into_a_closed_slot_names_the_reason(tutor, remote, in_person, now):
    booking = held(make_slot(tutor, now + timedelta(days=3), remote=remote), now=now)
    pay(booking, now=now)
    soon = make_slot(tutor, now + timedelta(hours=2), remote=remote)

    with pytest.raises(services.SlotUnavailable) as caught:
        services.booking_reschedule(booking_id=booking.pk, slot_id=soon.pk, now=now)
    assert caught.value.reason == "too_soon"


# --- what one client, one email can sit on ----------------------------------------------


def week_of_slots(tutor, remote, now, n=30):
    return [
        make_slot(tutor, now + timedelta(days=2 + i // 8, hours=i % 8), remote=remote)
        for i in range(n)
    ]


def test_one_network_address_holds_at_most_the_client_limit(api, frozen, tutor, remote, now):
    slots = week_of_slots(tutor, remote, now)
    codes = [
        hold(api, s, email=f"throwaway{i}@example.com").status_code for i, s in enumerate(slots[:6])
    ]

    assert codes == [201, 201, 201, 201, 409, 409]
    refused = hold(api, slots[4], email="x@example.com").json()
    assert refused["code"] == "too_many_holds"
    # Another address is not held back by the first one's holds.
    other = Client(REMOTE_ADDR="203.0.113.9")
    response = other.post(
        "/api/bookings/",
        {"slot": slots[5].pk, "mode": "remote", "student_name": "Kim", "student_email": "k@e.com"},
        content_type="application/json",
    )
    assert response.status_code == 201


def test_an_ipv6_client_is_counted_by_its_network(tutor, remote, now):
    slots = week_of_slots(tutor, remote, now)
    for i in range(4):
        held(slots[i], email=f"v6-{i}@example.com", client=f"2001:db8:1:2::{i + 1}", now=now)
    with pytest.raises(services.ApplicationError) as caught:
        held(slots[4], email="v6-x@example.com", client="2001:db8:1:2:ffff::9", now=now)
    assert caught.value.code == "too_many_holds"
    assert held(slots[5], email="v6-y@example.com", client="2001:db8:1:3::1", now=now)


def test_all_clients_together_hold_at_most_a_share_of_a_tutors_calendar(
    tutor, remote, now, settings
):
    settings.BOOKING_MAX_HELD_SHARE = 0.25
    settings.BOOKING_MIN_HELD_PER_TUTOR = 2
    slots = week_of_slots(tutor, remote, now, n=16)
    for i in range(4):  # a quarter of 16
        held(slots[i], email=f"s{i}@example.com", client=f"198.51.100.{i}", now=now)

    with pytest.raises(services.ApplicationError) as caught:
        held(slots[4], email="s4@example.com", client="198.51.100.4", now=now)

    assert (caught.value.code, caught.value.reason) == ("too_many_holds", "tutor_share")
    # Paying frees the share: a confirmed booking is no longer an unpaid hold.
    pay(
        Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT).earliest("created_at"), now=now
    )
    assert held(slots[4], email="s4@example.com", client="198.51.100.4", now=now)


def test_the_client_limit_counts_only_unexpired_holds(tutor, remote, now):
    slots = [
        make_slot(tutor, now + timedelta(days=2, hours=2 * i), remote=remote) for i in range(6)
    ]
    for i in range(4):
        held(slots[i], email=f"a{i}@example.com", client="198.51.100.7", now=now)
    later = now + timedelta(minutes=31)
    assert held(slots[4], email="b@example.com", client="198.51.100.7", now=later)


def test_the_client_address_is_never_stored(tutor, remote, now):
    booking = held(
        make_slot(tutor, now + timedelta(days=2), remote=remote), client="198.51.100.7", now=now
    )
    assert booking.client_digest
    assert "198.51.100.7" not in booking.client_digest
    assert Booking.objects.filter(client_digest__contains="198.51").count() == 0


def test_the_tutor_sees_how_many_unpaid_holds_sit_on_their_calendar(
    client, frozen, tutor, remote, now
):
    for i in range(3):
        held(
            make_slot(tutor, now + timedelta(days=2, hours=2 * i), remote=remote),
            email=f"s{i}@e.com",
            client="198.51.100.7",
            now=now,
        )
    client.force_login(tutor.user)

    page = client.get("/tutor/").content.decode()

    assert "3 held, awaiting payment" in page
    assert "1 network address" in page


def test_rejected_holds_never_lock_a_students_email_out(api, frozen, tutor, remote, now, rates):
    rates(holds_email="2/hour")
    slot = make_slot(tutor, now + timedelta(days=2), remote=remote)
    for _ in range(10):
        junk = api.post(
            "/api/bookings/",
            {
                "slot": 999999,
                "mode": "remote",
                "student_name": "X",
                "student_email": "sam@example.com",
            },
            format="json",
        )
        assert junk.status_code == 400
    assert hold(api, slot, email="sam@example.com").status_code == 201


@pytest.mark.parametrize("body", ["{", "[1, 2]", '"text"', "null", "\xff\xfe"])
def test_a_malformed_hold_body_says_so(api, frozen, body, rates):
    rates(holds_email="10/hour", holds_ip="100/min")
    response = api.post("/api/bookings/", body.encode("latin-1"), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] in ("malformed_request", "invalid")
    assert "slot" not in response.json()["fields"] or body in ("[1, 2]", '"text"', "null")


def test_invalid_json_is_reported_as_invalid_json(api, frozen, rates):
    rates(holds_email="10/hour", holds_ip="100/min")
    response = api.post("/api/bookings/", b'{"slot": 1,', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


# --- a form sent twice is one hold ---------------------------------------------------------


def book_form(client, slot, key, email="sam@example.com"):
    return client.post(
        f"/t/{slot.tutor.slug}/book/",
        {
            "slot": slot.pk,
            "mode": "remote",
            "student_name": "Sam Student",
            "student_email": email,
            "notes": "",
            "student_timezone": "Europe/Berlin",
            "request_key": key,
        },
    )


def test_a_form_sent_three_times_makes_one_hold_and_no_false_taken(client, frozen, slot):
    key = "k" * 32
    answers = [book_form(client, slot, key) for _ in range(3)]

    assert {a.status_code for a in answers} == {302}
    assert len({a["Location"] for a in answers}) == 1
    assert Booking.objects.count() == 1


def test_back_and_resend_after_paying_shows_the_paid_booking(client, frozen, slot, now):
    key = "k" * 32
    book_form(client, slot, key)
    booking = Booking.objects.get()
    pay(booking, now=now)

    again = book_form(client, slot, key)

    assert again.status_code == 302
    assert again["Location"].endswith(booking.manage_path)
    page = client.get(again["Location"]).content.decode()
    assert "just taken" not in page
    assert "Nothing was charged" not in page


def test_the_booking_form_carries_a_one_time_key_and_a_single_submit(client, frozen, slot):
    page = client.get(f"/t/{slot.tutor.slug}/book/", {"slot": slot.pk}).content.decode()
    assert 'name="request_key"' in page
    assert "data-once" in page


# --- real concurrency (PostgreSQL) --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("limit", "attempts", "same"),
    [("BOOKING_MAX_HOLDS_PER_EMAIL", 2, "email"), ("BOOKING_MAX_HOLDS_PER_CLIENT", 3, "client")],
)
def test_one_student_holding_at_several_tutors_at_once_gets_the_limit(
    make_tutor, now, settings, limit, attempts, same
):
    """The same email, or the same client address with fresh emails, racing at as
    many tutors (each tutor's own lock would let every attempt through)."""
    setattr(settings, limit, attempts)
    n = 2 * attempts + 2
    slots = []
    for _ in range(n):
        tutor = make_tutor()
        remote, _ = add_offerings(tutor)
        slots.append(make_slot(tutor, now + timedelta(days=2), remote=remote))

    def attempt(i):
        who = (
            {"email": "sam@example.com"}
            if same == "email"
            else {"email": f"s{i}@example.com", "client": "198.51.100.7"}
        )
        try:
            held(slots[i], now=now, **who)
            return "held"
        except services.ApplicationError as exc:
            return exc.code

    outcomes = Counter(run_concurrently(n, attempt))
    assert outcomes == {"held": attempts, "too_many_holds": n - attempts}


def _lock_waiters() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_reschedule_finds_the_moved_booking(tutor, remote, now):
    booking = held(make_slot(tutor, now + timedelta(days=3), remote=remote), now=now)
    pay(booking, now=now)
    target = make_slot(tutor, now + timedelta(days=4), remote=remote)
    moving, waiting = threading.Event(), threading.Event()
    results: dict = {}

    def reschedule():
        try:
            with transaction.atomic():
                Booking.objects.select_for_update().get(pk=booking.pk)
                Booking.objects.filter(pk=booking.pk).update(slot=target)
                moving.set()
                waiting.wait(10)  # the cancel is queued behind our lock
        finally:
            connections.close_all()

    def cancel():
        moving.wait(10)
        try:
            results["cancel"] = services.booking_cancel(
                booking_id=booking.pk, actor=Actor.STUDENT, now=now
            ).booking.status
        except Exception as exc:
            results["cancel"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reschedule), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    moving.wait(10)
    for _ in range(500):
        if _lock_waiters():
            break
        threading.Event().wait(0.01)
    waiting.set()
    for t in threads:
        t.join(30)
    connection.close()

    assert results["cancel"] == BookingStatus.CANCELLED


# --- private links are throttled on the web too ------------------------------------------


@pytest.mark.parametrize("path", ["/bookings/{}/", "/bookings/{}/cancel/", "/payments/return/{}/"])
def test_private_link_pages_are_throttled_per_address(client, frozen, slot, now, rates, path):
    rates(manage_ip="2/min")
    booking = held(slot, now=now)
    url = path.format(booking.manage_token)
    guess = path.format("x" * 43)

    assert client.get(url).status_code in (200, 302)
    assert client.get(guess).status_code == 404
    third = client.get(url)

    assert third.status_code == 429
    assert int(third["Retry-After"]) > 0
    assert booking.manage_token not in third.content.decode()
