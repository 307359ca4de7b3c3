"""The tutor's availability editor: weekly rules with a preview, days off, one-off slots."""

import html as htmllib
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from bookings.models import (
    AvailabilityRule,
    BlockedPeriod,
    BookingStatus,
    BusyInterval,
    Slot,
    SlotRemoval,
    SlotSource,
)
from payments.models import Refund
from tests.conftest import add_offerings, make_slot

from .conftest import confirm, hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


def rule_form(remote, **changes):
    """The rule form's fields as the page posts them (prefixed "rule-"), and its button."""
    data = {
        "weekdays": ["2", "4"],
        "start_time": "18:00",
        "end_time": "20:00",
        "offerings": [str(remote.pk)],
        "is_active": "on",
    }
    action = changes.pop("action", "save")
    data.update(changes)
    return {**{f"rule-{name}": value for name, value in data.items()}, "action": action}


def block_form(**fields):
    return {f"block-{name}": value for name, value in fields.items()}


def slot_form(**fields):
    return {f"slot-{name}": value for name, value in fields.items()}


def test_the_page_lists_rules_and_has_labelled_forms(tutor_client, weekly_rule):
    html = tutor_client.get("/tutor/availability/").content.decode()
    assert "<strong>Tue, Thu</strong>" in html
    assert "6:00 PM–9:00 PM" in html
    for label in ("Days", "From", "Until", "First day off", "Last day off", "Date", "Starts at"):
        assert f">{label}</" in html


def test_previewing_a_rule_shows_its_slots_and_writes_nothing(tutor_client, remote):
    response = tutor_client.post("/tutor/availability/", rule_form(remote, action="preview"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This rule creates <strong>8 slots</strong>" in html
    assert "Thu, Dec 3" in html and "6:00 PM–7:00 PM" in html and "7:00 PM–8:00 PM" in html
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.exists()


def test_the_live_preview_answers_with_the_fragment_alone(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/", rule_form(remote), headers={"X-Preview": "1"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="preview" id="rule-preview">')
    assert "This rule creates" in html
    assert not AvailabilityRule.objects.exists()


def test_the_preview_marks_slots_an_older_rule_keeps(tutor_client, weekly_rule, remote):
    html = tutor_client.post(
        "/tutor/availability/", rule_form(remote, action="preview", start_time="17:30")
    ).content.decode()
    assert "overlaps an earlier rule&#x27;s slot" in html


def test_the_preview_marks_slots_a_one_off_slot_keeps(tutor_client, tutor, remote, now):
    thursday_six_pm = datetime(2026, 12, 3, 18, 30, tzinfo=tutor.zone)
    make_slot(tutor, thursday_six_pm.astimezone(UTC), remote=remote)
    html = tutor_client.post(
        "/tutor/availability/", rule_form(remote, action="preview")
    ).content.decode()
    assert "overlaps another slot" in html
    assert "This rule creates <strong>6 slots</strong>" in html


def test_the_preview_counts_what_saving_creates(tutor_client, tutor, weekly_rule, remote, now):
    """The preview asks the materialiser's own rules: what it promises is what appears."""
    make_slot(tutor, datetime(2026, 12, 8, 16, 0, tzinfo=tutor.zone).astimezone(UTC), remote=remote)
    form = rule_form(remote, weekdays=["2", "3"], start_time="15:00", end_time="19:00")
    html = tutor_client.post(
        "/tutor/availability/", {**form, "action": "preview"}, headers={"X-Preview": "1"}
    ).content.decode()
    found = re.search(r"creates <strong>(\d+) slots?</strong>", html)
    assert found is not None, html
    promised = int(found.group(1))
    tutor_client.post("/tutor/availability/", form)
    rule = AvailabilityRule.objects.latest("id")
    two_weeks = now + timedelta(weeks=2)
    made = Slot.objects.filter(rule=rule, removed_at__isnull=True, start__lt=two_weeks)
    assert promised == made.count() > 0


def test_saving_a_rule_creates_slots_and_shows_them(tutor_client, remote, tutor):
    response = tutor_client.post("/tutor/availability/", rule_form(remote), follow=True)
    assert response.redirect_chain == [("/tutor/slots/", 302)]
    html = response.content.decode()
    assert "Rule saved." in html
    assert "Thursday, December 3" in html and "6:00 PM–7:00 PM" in html
    rule = AvailabilityRule.objects.get()
    assert rule.weekdays == [2, 4]
    first = Slot.objects.filter(rule=rule).order_by("start")[0]
    assert first.start == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weekdays": []}, "Pick at least one day."),
        ({"end_time": "17:00"}, "The end must be after the start (same day)."),
        ({"offerings": []}, "Choose at least one session type."),
    ],
)
def test_a_bad_rule_is_explained_next_to_the_field(tutor_client, remote, change, message):
    response = tutor_client.post("/tutor/availability/", rule_form(remote, **change))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AvailabilityRule.objects.exists()


def test_editing_a_rule_changes_its_slots(tutor_client, weekly_rule, remote, in_person):
    url = f"/tutor/availability/rules/{weekly_rule.pk}/"
    assert b'value="18:00"' in tutor_client.get(url).content
    data = rule_form(remote, weekdays=["2"], offerings=[str(remote.pk), str(in_person.pk)])
    tutor_client.post(url, data)
    weekly_rule.refresh_from_db()
    assert weekly_rule.weekdays == [2]
    active = Slot.objects.filter(rule=weekly_rule, removed_at__isnull=True)
    assert {s.start.astimezone(weekly_rule.tutor.zone).isoweekday() for s in active} == {2}


def test_deleting_a_rule_withdraws_its_open_slots(tutor_client, weekly_rule):
    response = tutor_client.post(f"/tutor/availability/rules/{weekly_rule.pk}/delete/")
    assert response.status_code == 302
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.filter(removed_at__isnull=True).exists()


def test_another_tutors_rule_is_a_404(client, weekly_rule, make_tutor, frozen):
    other = make_tutor(slug="bo")
    client.force_login(other.user)
    assert client.get(f"/tutor/availability/rules/{weekly_rule.pk}/").status_code == 404
    assert client.post(f"/tutor/availability/rules/{weekly_rule.pk}/delete/").status_code == 404
    assert AvailabilityRule.objects.exists()


def test_blocking_days_withdraws_the_open_slots_on_them(tutor_client, weekly_rule, tutor):
    response = tutor_client.post(
        "/tutor/availability/blocks/",
        block_form(first_day="2026-12-08", last_day="2026-12-10", reason="Vacation"),
    )
    assert response.status_code == 302
    block = BlockedPeriod.objects.get()
    assert block.start == datetime(2026, 12, 8, 5, 0, tzinfo=UTC)  # local midnight
    assert block.end == datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
    withdrawn = Slot.objects.filter(removed_reason=SlotRemoval.BLOCKED)
    assert withdrawn.count() == 6  # Tue 8 and Thu 10, three slots each
    assert b"Vacation" in tutor_client.get("/tutor/availability/").content

    tutor_client.post(f"/tutor/availability/blocks/{block.pk}/delete/")
    assert not BlockedPeriod.objects.exists()
    assert not Slot.objects.filter(removed_at__isnull=False).exists()


def test_a_block_ending_before_it_starts_is_refused(tutor_client):
    response = tutor_client.post(
        "/tutor/availability/blocks/", block_form(first_day="2026-12-10", last_day="2026-12-08")
    )
    assert b"The last day cannot be before the first." in response.content
    assert not BlockedPeriod.objects.exists()


def test_a_one_off_slot_is_added_in_the_tutors_zone(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/slots/",
        slot_form(day="2026-12-12", start_time="09:30", offerings=[str(remote.pk)]),
    )
    assert response.status_code == 302
    slot = Slot.objects.get()
    assert slot.source == SlotSource.ONE_OFF
    assert slot.start == datetime(2026, 12, 12, 14, 30, tzinfo=UTC)
    assert slot.end - slot.start == timedelta(minutes=60)


def test_a_one_off_slot_in_the_past_or_overlapping_is_refused(tutor_client, weekly_rule, remote):
    past = tutor_client.post(
        "/tutor/availability/slots/",
        slot_form(day="2026-12-01", start_time="09:30", offerings=[str(remote.pk)]),
    )
    assert b"That time has passed." in past.content
    overlap = tutor_client.post(
        "/tutor/availability/slots/",
        slot_form(day="2026-12-03", start_time="18:30", offerings=[str(remote.pk)]),
    )
    # In the tutor's own zone, as they typed it: not an ISO time in UTC.
    assert (
        b"It overlaps your slot starting Thu, Dec 3, 6:00 PM (America/New_York)." in overlap.content
    )


def test_a_one_off_slot_at_a_time_the_clocks_skip_is_refused(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/slots/",
        slot_form(day="2027-03-14", start_time="02:30", offerings=[str(remote.pk)]),
    )
    assert b"The clocks skip that time" in response.content


def test_the_slots_page_lists_open_and_booked_slots_and_removes_one(tutor_client, weekly_rule, now):
    booked = Slot.objects.order_by("start")[0]
    hold_slot(booked, now=now)
    html = tutor_client.get("/tutor/slots/").content.decode()
    assert "Held by Sam Student" in html
    assert f"/tutor/slots/{booked.pk}/delete/" not in html
    free = Slot.objects.order_by("start")[1]
    response = tutor_client.post(f"/tutor/slots/{free.pk}/delete/", follow=True)
    assert b"Slot removed." in response.content
    free.refresh_from_db()
    assert free.removed_reason == SlotRemoval.DELETED


def test_removing_a_booked_slot_is_refused_with_a_reason(tutor_client, weekly_rule, now):
    booked = Slot.objects.order_by("start")[0]
    hold_slot(booked, now=now)
    response = tutor_client.post(f"/tutor/slots/{booked.pk}/delete/", follow=True)
    assert b"This slot is booked: cancel the booking first." in response.content


def test_the_slot_removal_only_returns_to_local_pages(tutor_client, weekly_rule):
    slot = Slot.objects.order_by("start")[0]
    response = tutor_client.post(
        f"/tutor/slots/{slot.pk}/delete/", {"next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/tutor/slots/"


# --- one page, three forms ----------------------------------------------------------------------


def duplicate_ids(page: str) -> list[str]:
    ids = re.findall(r'\sid="([^"]+)"', page)
    return sorted({i for i in ids if ids.count(i) > 1})


def test_the_three_forms_have_their_own_ids(tutor_client, weekly_rule):
    page = tutor_client.get("/tutor/availability/").content.decode()
    assert duplicate_ids(page) == []
    # Every label names an element of its own form.
    for target in re.findall(r'<label for="([^"]+)"', page):
        assert page.count(f'id="{target}"') == 1, target
    assert 'id="id_rule-start_time"' in page and 'id="id_slot-start_time"' in page
    assert 'id="id_rule-offerings_0"' in page and 'id="id_slot-offerings_0"' in page


def test_an_invalid_one_off_slot_keeps_the_other_forms_clean(tutor_client, remote):
    response = tutor_client.post("/tutor/availability/slots/", slot_form(day="", start_time="9"))
    page = response.content.decode()
    assert duplicate_ids(page) == []
    assert 'href="#id_slot-day"' in page  # the error summary links the one-off form's field
    assert 'aria-invalid="true"' not in page.split('id="oneoff-heading"')[0]


# --- warnings when a rule is saved --------------------------------------------------------------


def saved_messages(response) -> str:
    return htmllib.unescape(response.content.decode())


def test_saving_a_rule_that_overlaps_another_warns_which_one(tutor_client, weekly_rule, remote):
    response = tutor_client.post(
        "/tutor/availability/",
        rule_form(remote, weekdays=["2"], start_time="17:30", end_time="19:30"),
        follow=True,
    )
    page = saved_messages(response)
    assert "Rule saved." in page
    assert (
        "It overlaps your weekly rule Tue, Thu 6:00 PM–9:00 PM: where both want the same time, "
        "the older rule wins, so that rule's slots are used there." in page
    )
    assert "of its slots in the next 8 weeks overlap other slots" in page


def test_saving_a_rule_with_time_left_over_says_how_much(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/", rule_form(remote, end_time="20:30"), follow=True
    )
    page = saved_messages(response)
    assert (
        "The window 6:00 PM–8:30 PM fits 2 sessions of 60 minutes: its last 30 minutes stay free."
        in page
    )


def test_saving_a_rule_shorter_than_a_session_says_it_gives_nothing(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/", rule_form(remote, end_time="18:30"), follow=True
    )
    page = saved_messages(response)
    assert "Rule saved. It gives you 0 slots" in page
    assert "The window 6:00 PM–6:30 PM is shorter than one 60-minute session" in page


def test_a_rule_that_fits_is_saved_without_warnings(tutor_client, remote):
    response = tutor_client.post("/tutor/availability/", rule_form(remote), follow=True)
    assert b"notice warning" not in response.content


def test_saving_a_rule_on_days_off_says_how_many_slots_are_left_out(tutor_client, tutor, remote):
    tutor_client.post(
        "/tutor/availability/blocks/", block_form(first_day="2026-12-08", last_day="2026-12-10")
    )
    response = tutor_client.post("/tutor/availability/", rule_form(remote), follow=True)
    assert "4 of its slots in the next 8 weeks fall on your days off" in saved_messages(response)


# --- days off over booked sessions --------------------------------------------------------------


@pytest.fixture
def booked(slot, now):
    """Confirmed, Friday December 4 at 10:00 in New York."""
    return confirm(hold_slot(slot, now=now), now=now)


def block_friday(client):
    return client.post(
        "/tutor/availability/blocks/",
        block_form(first_day="2026-12-04", last_day="2026-12-04", reason="Conference"),
        follow=True,
    )


def test_blocking_a_booked_day_warns_and_offers_to_cancel(tutor_client, booked):
    response = block_friday(tutor_client)
    block = BlockedPeriod.objects.get()
    assert response.redirect_chain[-1] == (f"/tutor/availability/blocks/{block.pk}/", 302)
    page = saved_messages(response)
    assert "1 booked session falls on these days and still stands" in page
    assert "Fri, Dec 4, 12:00 AM – Sat, Dec 5, 12:00 AM (America/New_York) · Conference" in (
        re.sub(r"<[^>]+>", "", page)
    )
    assert "Fri, Dec 4, 10:00 AM–11:00 AM · Sam Student · Remote (video)" in page
    assert f'value="{booked.pk}"' in page
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED  # a block never cancels by itself
    listing = tutor_client.get("/tutor/availability/").content.decode()
    assert "1 booked session inside: review" in listing


def test_the_tutor_cancels_a_session_on_a_day_off_with_a_full_refund(
    tutor_client, booked, django_capture_on_commit_callbacks
):
    block_friday(tutor_client)
    block = BlockedPeriod.objects.get()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = tutor_client.post(
            f"/tutor/availability/blocks/{block.pk}/",
            {"bookings": [str(booked.pk)], "reason": "At a conference"},
            follow=True,
        )
    assert b"Cancelled 1 session." in response.content
    assert b"No booked session falls in this period." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CANCELLED
    assert booked.refund_amount == 9000
    assert Refund.objects.get().amount == 9000
    assert booked.events.last().actor == "tutor"
    assert booked.events.last().reason == "At a conference"
    student = [m for m in mail.outbox if m.to == ["sam@example.com"]]
    assert student and student[0].subject.startswith("Cancelled")


def test_choosing_no_session_cancels_nothing(tutor_client, booked):
    block_friday(tutor_client)
    block = BlockedPeriod.objects.get()
    response = tutor_client.post(f"/tutor/availability/blocks/{block.pk}/", {"reason": "x"})
    assert b"Choose at least one session to cancel." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED


def test_another_tutors_block_and_bookings_are_out_of_reach(
    client, tutor_client, booked, make_tutor, now
):
    block_friday(tutor_client)
    block = BlockedPeriod.objects.get()
    other = make_tutor(slug="bo")
    client.force_login(other.user)
    assert client.get(f"/tutor/availability/blocks/{block.pk}/").status_code == 404
    response = client.post(
        f"/tutor/availability/blocks/{block.pk}/", {"bookings": [str(booked.pk)]}
    )
    assert response.status_code == 404

    # Their own block over the same day cannot name the first tutor's booking either.
    add_offerings(other)
    client.post(
        "/tutor/availability/blocks/",
        block_form(first_day="2026-12-04", last_day="2026-12-04"),
    )
    theirs = BlockedPeriod.objects.get(tutor=other)
    response = client.post(
        f"/tutor/availability/blocks/{theirs.pk}/", {"bookings": [str(booked.pk)]}
    )
    assert b"No booked session falls in this period." in response.content
    booked.refresh_from_db()
    assert booked.status == BookingStatus.CONFIRMED


# --- the slot list shows what students see ------------------------------------------------------


def public_slot_ids(client, tutor) -> set[int]:
    page = client.get(f"/t/{tutor.slug}/?view=list&tz={tutor.timezone}").content.decode()
    return {int(i) for i in re.findall(r"\?slot=(\d+)", page)}


def test_the_slot_list_marks_slots_students_cannot_book_and_why(
    tutor_client, client, tutor, remote, in_person, now
):
    soon = make_slot(tutor, now + timedelta(hours=6), remote=remote)  # inside 12 h notice
    friday = now + timedelta(days=2)  # Friday 10:00 in New York
    meeting = make_slot(tutor, friday, remote=remote, in_person=in_person)
    confirm(hold_slot(meeting, mode="in_person", now=now), now=now)
    after_meeting = make_slot(
        tutor, friday + timedelta(hours=1), remote=remote, in_person=in_person
    )
    saturday = now + timedelta(days=3)
    call = make_slot(tutor, saturday, remote=remote, in_person=in_person)
    confirm(hold_slot(call, email="kim@example.com", now=now), now=now)
    after_call = make_slot(tutor, saturday + timedelta(hours=1), remote=remote, in_person=in_person)
    sunday = now + timedelta(days=4)
    busy = make_slot(tutor, sunday, remote=remote)
    BusyInterval.objects.create(
        tutor=tutor, source=1, start=sunday, end=sunday + timedelta(hours=1)
    )
    free = make_slot(tutor, now + timedelta(days=5), remote=remote, in_person=in_person)

    page = htmllib.unescape(tutor_client.get("/tutor/slots/").content.decode())
    rows = {
        slot.pk: page.split(f"/tutor/slots/{slot.pk}/delete/")[1].split("</li>")[0]
        for slot in (soon, after_meeting, after_call, busy, free)
    }
    assert "Too soon to book: inside your minimum notice" in rows[soon.pk]
    assert "your travel buffer around an in-person session" in rows[after_meeting.pk]
    assert "In person hidden: your travel buffer around another session" in rows[after_call.pk]
    assert "you are busy then in one of your calendars" in rows[busy.pk]
    assert "slot-note" not in rows[free.pk]

    # The same verdicts as the public page (availability.decide for both).
    shown = public_slot_ids(client, tutor)
    assert free.pk in shown and after_call.pk in shown
    assert not shown & {soon.pk, after_meeting.pk, busy.pk}


def test_a_booked_one_off_slot_links_to_its_booking_instead_of_remove(tutor_client, booked):
    page = tutor_client.get("/tutor/availability/").content.decode()
    one_offs = page.split('id="oneoff-heading"')[1]
    assert f'href="/tutor/bookings/{booked.pk}/">Booked by Sam Student</a>' in one_offs
    assert f"/tutor/slots/{booked.slot_id}/delete/" not in one_offs
