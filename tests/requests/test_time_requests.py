"""Requested times through the API and the services: ask, accept or decline, the
private slot and its link, expiry, limits, and input that is refused."""

import re
from datetime import time, timedelta

import pytest
from django.test import Client

from bookings import selectors, services, time_requests
from bookings.errors import ApplicationError
from bookings.models import (
    BlockedPeriod,
    Booking,
    BookingStatus,
    Slot,
    SlotSource,
    TimeRequest,
    TimeRequestStatus,
)
from tests.conftest import add_offerings, hold, make_slot
from tests.payments.conftest import deliver

from .conftest import iso, times_from

pytestmark = pytest.mark.django_db


def ask(api, now, *days, offering, **extra):
    body = {
        "offering": offering.pk,
        "times": iso(times_from(now, *days)),
        "student_name": "Sam Student",
        "student_email": "sam@example.com",
        "note": "Pandas, please",
        "student_timezone": "Europe/Berlin",
        **extra,
    }
    return api.post("/api/tutors/ada/requests/", body, format="json")


def offer_token(message) -> str:
    found = re.search(r"/offer/([A-Za-z0-9_-]+)/", message.body)
    assert found, message.body
    return found.group(1)


def private_slot(row: TimeRequest) -> Slot:
    assert row.slot is not None
    return row.slot


def public_slot_ids(api, now) -> list[int]:
    body = api.get(
        "/api/slots/",
        {"tutor": "ada", "start": now.date().isoformat(), "end": (now + timedelta(days=30)).date()},
    ).json()
    return [s["id"] for s in body["results"]]


# --- the whole story --------------------------------------------------------------------------


def test_a_request_accepted_held_through_the_link_and_paid_is_confirmed(
    api, tutor_api, frozen, now, remote, emails, stripe
):
    with emails():
        asked = ask(api, now, 2, 3, offering=remote)
    assert asked.status_code == 201, asked.content
    body = asked.json()
    assert body["status"] == "pending"
    assert len(body["times"]) == 2
    (to_tutor,) = emails
    assert to_tutor.to == ["ada@example.com"]
    assert "Sam Student asks for a time" in to_tutor.subject
    assert "Pandas, please" in to_tutor.body
    assert "/offer/" not in to_tutor.body  # the link is the student's alone

    listed = tutor_api.get("/api/tutor/requests/").json()
    assert [r["id"] for r in listed] == [body["id"]]
    with emails():
        accepted = tutor_api.post(
            f"/api/tutor/requests/{body['id']}/accept/", {"choice": 2}, format="json"
        )
    assert accepted.status_code == 200, accepted.content
    row = TimeRequest.objects.get()
    assert row.status == TimeRequestStatus.ACCEPTED
    slot = private_slot(row)
    assert slot.source == SlotSource.PRIVATE
    assert slot.start == times_from(now, 3)[0]
    assert slot.end - slot.start == remote.duration
    assert row.offer_expires_at == now + timedelta(hours=48)

    to_student = emails[1]
    assert to_student.to == ["sam@example.com"]
    assert "hold it by" in to_student.subject
    assert "Berlin time" in to_student.body  # the student's zone
    token = offer_token(to_student)

    # Hidden from everyone else: the public list, the tutor's page.
    assert row.slot_id not in public_slot_ids(api, now)
    page = Client().get("/t/ada/")
    assert f'"id": {row.slot_id},' not in page.content.decode()
    assert f"slot={row.slot_id}" not in page.content.decode()

    offer = Client().get(f"/offer/{token}/")
    assert offer.status_code == 200
    assert "Hold and pay" in offer.content.decode()
    held = Client().post(f"/offer/{token}/")
    assert held.status_code == 302
    (session,) = stripe.sessions
    assert held["Location"] == session["url"]
    booking = Booking.objects.get()
    assert (booking.slot_id, booking.status) == (row.slot_id, BookingStatus.PENDING_PAYMENT)
    assert (booking.student_email, booking.notes) == ("sam@example.com", "Pandas, please")

    stripe.complete(session["id"])
    paid = stripe.session_event("checkout.session.completed", session["id"])
    assert deliver(paid).status_code == 200
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    # Booked: nothing left to expire, and the link says so.
    assert time_requests.time_requests_expire(now=now + timedelta(days=2, hours=12)) == 0
    assert "This time is booked" in Client().get(f"/offer/{token}/").content.decode()


def test_another_student_cannot_hold_the_private_slot_by_its_id(
    api, frozen, now, make_request, tutor
):
    row = make_request(2, 3)
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    taken = hold(api, private_slot(row), email="kim@example.com")
    assert taken.status_code == 400
    assert taken.json()["fields"]["slot"] == ["No such slot."]
    assert not Booking.objects.exists()


def test_a_second_click_on_the_link_finds_the_first_hold(frozen, now, make_request, tutor):
    row = make_request(2)
    time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    row.refresh_from_db()
    first = time_requests.offer_hold(request=row, now=now)
    again = time_requests.offer_hold(request=row, now=now)
    assert again.booking.pk == first.booking.pk
    assert Booking.objects.count() == 1


# --- the tutor's answer ---------------------------------------------------------------------


def test_declining_emails_the_tutors_message(api, tutor_api, frozen, now, remote, emails):
    asked = ask(api, now, 2, offering=remote).json()
    with emails():
        declined = tutor_api.post(
            f"/api/tutor/requests/{asked['id']}/decline/",
            {"message": "I am away that week.\nTry the week after?"},
            format="json",
        )
    assert declined.status_code == 200
    assert declined.json()["status"] == "declined"
    message = emails[-1]
    assert message.to == ["sam@example.com"]
    assert "cannot meet" in message.subject
    assert "I am away that week.\nTry the week after?" in message.body
    assert not Slot.objects.exists()
    # Answering again: the same decline is a no-op, an accept is refused.
    with emails():
        again = tutor_api.post(f"/api/tutor/requests/{asked['id']}/decline/", {}, format="json")
    assert again.status_code == 200
    late = tutor_api.post(f"/api/tutor/requests/{asked['id']}/accept/", {"choice": 1})
    assert late.status_code == 409
    assert late.json()["code"] == "request_answered"
    assert len([m for m in emails if "cannot meet" in m.subject]) == 1


def test_accepting_twice_makes_one_slot_and_one_email(frozen, now, make_request, tutor, emails):
    row = make_request(2)
    with emails():
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert Slot.objects.count() == 1
    assert len([m for m in emails if "/offer/" in m.body]) == 1
    with pytest.raises(ApplicationError) as refused:
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=2, now=now)
    assert refused.value.code == "request_answered"


def test_a_time_no_longer_possible_is_refused_with_the_reason(
    frozen, now, make_request, tutor, remote, in_person
):
    row = make_request(2, 3)
    # An in-person session booked next to time 1: the tutor is travelling then.
    near = make_slot(tutor, times_from(now, 2)[0] + timedelta(hours=1), in_person=in_person)
    services.booking_hold(
        slot_id=near.pk,
        mode="in_person",
        student_name="Kim",
        student_email="kim@example.com",
        now=now,
    )
    with pytest.raises(ApplicationError) as refused:
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert refused.value.code == "time_unavailable"
    assert refused.value.reason == "travel_buffer"
    # Nothing was kept: no private slot, the request still waits.
    assert not Slot.objects.filter(source=SlotSource.PRIVATE).exists()
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.PENDING
    # Too soon by now: the tutor's 12 hours' notice.
    later = times_from(now, 3)[0] - timedelta(hours=6)
    with pytest.raises(ApplicationError) as refused:
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=2, now=later)
    assert refused.value.reason == "too_soon"


def test_a_time_inside_a_block_or_over_a_slot_is_refused(frozen, now, make_request, tutor, remote):
    row = make_request(2, 3)
    first, second = times_from(now, 2, 3)
    BlockedPeriod.objects.create(tutor=tutor, start=first, end=first + timedelta(hours=2))
    make_slot(tutor, second, remote=remote)
    with pytest.raises(ApplicationError) as blocked:
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert blocked.value.code == "slot_blocked"
    with pytest.raises(ApplicationError) as overlap:
        time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=2, now=now)
    assert overlap.value.code == "slot_overlap"


def test_a_second_tutor_cannot_see_or_answer_the_first_tutors_requests(
    api, frozen, now, make_request, make_tutor
):
    row = make_request(2)
    other = make_tutor(slug="bo")
    add_offerings(other)
    bo = type(api)()
    bo.force_authenticate(other.user)
    assert bo.get("/api/tutor/requests/").json() == []
    assert bo.post(f"/api/tutor/requests/{row.pk}/accept/", {"choice": 1}).status_code == 404
    assert bo.post(f"/api/tutor/requests/{row.pk}/decline/", {}).status_code == 404
    client = Client()
    client.force_login(other.user)
    assert client.post(f"/tutor/requests/{row.pk}/accept/", {"choice": "1"}).status_code == 404
    assert "Sam Student" not in client.get("/tutor/requests/").content.decode()
    assert api.get("/api/tutor/requests/").status_code in (401, 403)
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.PENDING


# --- expiry ---------------------------------------------------------------------------------


def test_pending_requests_expire_once_their_times_have_passed(frozen, now, make_request):
    row = make_request(2, 3)
    assert time_requests.time_requests_expire(now=now + timedelta(days=3)) == 0
    at = times_from(now, 3)[0] + timedelta(minutes=1)
    assert time_requests.time_requests_expire(now=at) == 1
    assert time_requests.time_requests_expire(now=at) == 0
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.EXPIRED


def test_an_unused_offer_expires_and_its_slot_is_withdrawn(frozen, now, make_request, tutor):
    row = make_request(5)
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert time_requests.time_requests_expire(now=now + timedelta(hours=47)) == 0
    later = now + timedelta(hours=48)
    assert time_requests.time_requests_expire(now=later) == 1
    assert time_requests.time_requests_expire(now=later) == 0
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.EXPIRED
    assert private_slot(row).removed_at == later
    with pytest.raises(ApplicationError) as gone:
        time_requests.offer_hold(request=row, now=later)
    assert gone.value.status == 410


def test_an_offer_ends_when_the_tutors_notice_would_refuse_the_hold(
    frozen, now, make_request, tutor
):
    row = make_request(1)  # tomorrow 23:00: 32 hours away, notice 12 hours
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert row.offer_expires_at == private_slot(row).start - timedelta(hours=12)


def test_a_held_offer_is_not_expired_under_the_hold(frozen, now, make_request, tutor):
    row = make_request(5)
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    time_requests.offer_hold(request=row, now=now + timedelta(hours=47, minutes=50))
    assert time_requests.time_requests_expire(now=now + timedelta(hours=48)) == 0
    row.refresh_from_db()
    assert row.status == TimeRequestStatus.ACCEPTED


def test_a_private_slot_creation_leaves_the_public_list_and_its_tag_unchanged_in_content(
    api, frozen, now, make_request, tutor, remote
):
    make_slot(tutor, now + timedelta(days=4), remote=remote)
    before = public_slot_ids(api, now)
    row = make_request(2)
    time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    assert public_slot_ids(api, now) == before
    items = selectors.open_slots(start=now, end=now + timedelta(days=30), now=now, tutor=tutor)
    assert all(item.slot.source != SlotSource.PRIVATE for item in items)


# --- limits ---------------------------------------------------------------------------------


def test_one_email_may_have_three_requests_waiting(api, frozen, now, remote, settings):
    for days in (2, 3, 4):
        assert ask(api, now, days, offering=remote).status_code == 201
    fourth = ask(api, now, 5, offering=remote, student_email="SAM@example.com")
    assert fourth.status_code == 409
    assert fourth.json()["code"] == "too_many_requests"
    assert TimeRequest.objects.count() == 3


def test_one_network_address_may_have_a_few_requests_waiting(api, frozen, now, remote, settings):
    settings.REQUEST_MAX_PENDING_PER_CLIENT = 2
    for n in (1, 2):
        made = ask(api, now, 2, offering=remote, student_email=f"s{n}@example.com")
        assert made.status_code == 201
    third = ask(api, now, 2, offering=remote, student_email="s3@example.com")
    assert third.status_code == 409
    assert TimeRequest.objects.count() == 2


def test_the_api_throttles_requests_per_address(api, frozen, now, remote, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"requests_ip": "2/hour"},
    }
    from django.core.cache import cache

    cache.clear()
    for n in (1, 2):
        ask(api, now, 2, offering=remote, student_email=f"s{n}@example.com")
    third = ask(api, now, 3, offering=remote, student_email="s3@example.com")
    assert third.status_code == 429
    assert "Retry-After" in third
    cache.clear()


# --- input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"student_name": "Sam\x07"}, "student_name"),
        ({"student_name": "Sam\u202eevil"}, "student_name"),
        ({"note": "x" * 2001}, "note"),
        ({"note": "hello\x00"}, "note"),
        ({"student_email": "not-an-email"}, "student_email"),
        ({"times": ["2026-12-01T10:00:00Z"]}, "times"),
        ({"times": []}, "times"),
        ({"times": ["9999-12-31T23:59:59+14:00"]}, "times"),
        ({"times": ["0001-01-01T00:00:00-12:00"]}, "times"),
        ({"times": ["2026-12-10T18:00:00"]}, "times"),  # no offset
        ({"times": "soon"}, "times"),
        ({"offering": 999999}, "offering"),
    ],
)
def test_bad_input_gets_a_clear_400_and_stores_nothing(api, frozen, now, remote, change, field):
    if "offering" in change:
        response = ask(api, now, 2, offering=type(remote)(pk=change["offering"]))
    else:
        response = ask(api, now, 2, offering=remote, **change)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not TimeRequest.objects.exists()


def test_more_than_three_times_are_refused(api, frozen, now, remote):
    response = ask(api, now, 2, 3, 4, 5, offering=remote)
    assert response.status_code == 400
    assert "times" in response.json()["fields"]


def test_times_too_soon_or_beyond_the_horizon_say_why_in_the_students_zone(
    api, frozen, now, remote
):
    soon = (now + timedelta(hours=3)).isoformat()
    far = (now + timedelta(weeks=10)).isoformat()
    response = ask(api, now, offering=remote, times=[soon, far])
    assert response.status_code == 400
    messages = response.json()["fields"]["times"]
    assert messages[0].startswith("Time 1: That is too soon: Ada Park needs 12 hours' notice")
    assert "Berlin time" in messages[0]
    assert messages[1].startswith("Time 2: That is too far ahead")


def test_the_same_time_twice_is_refused(api, frozen, now, remote):
    (t,) = iso(times_from(now, 2))
    response = ask(api, now, offering=remote, times=[t, t])
    assert response.status_code == 400


def test_an_unknown_tutor_is_a_404(api, frozen, now, remote):
    response = api.post(
        "/api/tutors/nobody/requests/",
        {"offering": remote.pk, "times": iso(times_from(now, 2)), "student_name": "S",
         "student_email": "s@example.com"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404


def test_the_schema_documents_the_request_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert "post" in paths["/api/tutors/{slug}/requests/"]
    assert "get" in paths["/api/tutor/requests/"]
    assert "post" in paths["/api/tutor/requests/{id}/accept/"]
    assert "post" in paths["/api/tutor/requests/{id}/decline/"]


def test_weekly_rules_leave_a_private_slot_alone_and_fill_its_time_once_it_expires(
    frozen, now, make_request, tutor, remote, in_person
):
    row = make_request(1)  # Thursday 18:00 in New York
    row = time_requests.time_request_accept(tutor=tutor, request_id=row.pk, choice=1, now=now)
    slot = private_slot(row)
    services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[4],
        start_time=time(18, 0),
        end_time=time(21, 0),
        offerings=[remote, in_person],
    )
    at_that_time = Slot.objects.filter(tutor=tutor, start=slot.start, removed_at__isnull=True)
    assert [(s.pk, s.source) for s in at_that_time] == [(slot.pk, SlotSource.PRIVATE)]
    assert Slot.objects.filter(source=SlotSource.RULE, start=slot.end).exists()

    ended = row.offer_expires_at
    assert ended is not None
    assert time_requests.time_requests_expire(now=ended) == 1
    services.tutors_materialise(now=ended)
    (public,) = Slot.objects.filter(tutor=tutor, start=slot.start, removed_at__isnull=True)
    assert public.source == SlotSource.RULE
    assert public.pk != slot.pk
