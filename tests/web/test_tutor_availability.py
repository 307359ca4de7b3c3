"""The tutor's availability editor: weekly rules with a preview, days off, one-off slots."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from bookings.models import AvailabilityRule, BlockedPeriod, Slot, SlotRemoval, SlotSource
from tests.conftest import make_slot

from .conftest import hold_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


def rule_form(remote, **changes):
    data = {
        "weekdays": ["2", "4"],
        "start_time": "18:00",
        "end_time": "20:00",
        "offerings": [str(remote.pk)],
        "is_active": "on",
        "action": "save",
    }
    data.update(changes)
    return data


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
        {"first_day": "2026-12-08", "last_day": "2026-12-10", "reason": "Vacation"},
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
        "/tutor/availability/blocks/", {"first_day": "2026-12-10", "last_day": "2026-12-08"}
    )
    assert b"The last day cannot be before the first." in response.content
    assert not BlockedPeriod.objects.exists()


def test_a_one_off_slot_is_added_in_the_tutors_zone(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/slots/",
        {"day": "2026-12-12", "start_time": "09:30", "offerings": [str(remote.pk)]},
    )
    assert response.status_code == 302
    slot = Slot.objects.get()
    assert slot.source == SlotSource.ONE_OFF
    assert slot.start == datetime(2026, 12, 12, 14, 30, tzinfo=UTC)
    assert slot.end - slot.start == timedelta(minutes=60)


def test_a_one_off_slot_in_the_past_or_overlapping_is_refused(tutor_client, weekly_rule, remote):
    past = tutor_client.post(
        "/tutor/availability/slots/",
        {"day": "2026-12-01", "start_time": "09:30", "offerings": [str(remote.pk)]},
    )
    assert b"That time has passed." in past.content
    overlap = tutor_client.post(
        "/tutor/availability/slots/",
        {"day": "2026-12-03", "start_time": "18:30", "offerings": [str(remote.pk)]},
    )
    assert b"It overlaps your slot starting" in overlap.content


def test_a_one_off_slot_at_a_time_the_clocks_skip_is_refused(tutor_client, remote):
    response = tutor_client.post(
        "/tutor/availability/slots/",
        {"day": "2027-03-14", "start_time": "02:30", "offerings": [str(remote.pk)]},
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
