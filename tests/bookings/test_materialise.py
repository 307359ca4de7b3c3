"""Rules → stored slots: the horizon, idempotence, blocks, edits, and booked slots."""

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from bookings import services
from bookings.availability import slots_materialise
from bookings.models import BlockedPeriod, Booking, BookingStatus, Slot, SlotRemoval, SlotSource
from tests.conftest import make_slot

NY = ZoneInfo("America/New_York")
pytestmark = pytest.mark.django_db


def active(tutor):
    return Slot.objects.filter(tutor=tutor, removed_at__isnull=True).order_by("start")


def on_local_day(qs, day):
    start = datetime.combine(day, time(0), NY)
    return qs.filter(start__gte=start, start__lt=start + timedelta(days=1))


def book(slot: Slot, status: str = BookingStatus.CONFIRMED) -> Booking:
    offering = slot.remote_offering or slot.in_person_offering
    assert offering is not None
    return Booking.objects.create(
        tutor=slot.tutor,
        slot=slot,
        offering=offering,
        mode=offering.mode,
        student_name="S",
        student_email="s@example.com",
        price_amount=offering.price_amount,
        currency="usd",
        status=status,
        hold_expires_at=slot.start if status == BookingStatus.PENDING_PAYMENT else None,
    )


def test_a_rule_fills_the_eight_week_horizon_in_the_tutors_wall_clock(tutor, weekly_rule, now):
    slots = list(active(tutor))
    # Tue + Thu, three 60-minute slots each evening, 8 weeks (+ the rest of this one).
    assert 16 * 3 <= len(slots) <= 18 * 3
    assert {s.start.astimezone(NY).time() for s in slots} == {time(18), time(19), time(20)}
    assert {s.start.astimezone(NY).isoweekday() for s in slots} == {2, 4}
    assert all(s.start > now for s in slots)
    assert max(s.start for s in slots) <= now + timedelta(weeks=8, days=1)
    assert all(s.source == SlotSource.RULE and s.rule_id == weekly_rule.pk for s in slots)
    assert all(s.remote_offering_id and s.in_person_offering_id for s in slots)


def test_running_it_twice_creates_nothing_new(tutor, weekly_rule, now):
    before = list(Slot.objects.values_list("id", "start", "end", "removed_at"))
    result = slots_materialise(tutor=tutor, now=now)
    assert (result.created, result.removed, result.updated, result.reactivated) == (0, 0, 0, 0)
    assert list(Slot.objects.values_list("id", "start", "end", "removed_at")) == before


def test_the_horizon_moves_forward_with_time(tutor, weekly_rule, now):
    count = active(tutor).count()
    result = slots_materialise(tutor=tutor, now=now + timedelta(weeks=1))
    assert result.created == 6
    # Past slots are not withdrawn, they just stop being open.
    assert active(tutor).count() == count + 6


def test_an_18_00_rule_gives_18_00_local_on_both_sides_of_the_dst_change(tutor, remote, in_person):
    now = datetime(2026, 10, 20, 12, tzinfo=UTC)
    services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start_time=time(18),
        end_time=time(19),
        offerings=[remote],
    )
    slots = list(active(tutor).filter(start__lt=datetime(2026, 11, 10, tzinfo=UTC)))
    assert {s.start.astimezone(NY).time() for s in slots} == {time(18)}
    assert {s.start.hour for s in slots} == {22, 23}  # EDT then EST, in UTC


def test_a_blocked_period_withdraws_unbooked_slots_and_keeps_booked_ones(tutor, weekly_rule, now):
    day = active(tutor).first().start.astimezone(NY).date()
    evening = list(on_local_day(active(tutor), day))
    booked = book(evening[1])
    services.block_create(
        tutor=tutor,
        start=datetime.combine(day, time(0), NY),
        end=datetime.combine(day, time(23, 59), NY),
        reason="vacation",
        now=now,
    )
    evening = list(Slot.objects.filter(pk__in=[s.pk for s in evening]).order_by("start"))
    assert [s.removed_reason for s in evening] == [SlotRemoval.BLOCKED, "", SlotRemoval.BLOCKED]
    assert evening[1].pk == booked.slot_id and evening[1].removed_at is None
    # Lifting the block brings the withdrawn slots back.
    services.block_delete(block=BlockedPeriod.objects.get(), now=now)
    assert all(s.removed_at is None for s in Slot.objects.filter(pk__in=[s.pk for s in evening]))


def test_deleting_a_rule_withdraws_its_future_unbooked_slots_only(tutor, weekly_rule, now):
    first = active(tutor).first()
    assert first is not None
    book(first)
    services.rule_delete(rule=weekly_rule, now=now)
    assert list(active(tutor)) == [first]
    assert Slot.objects.filter(removed_reason=SlotRemoval.UNCOVERED).count() > 40


def test_editing_a_rules_hours_moves_unbooked_slots(tutor, weekly_rule, now):
    first = active(tutor).first()
    assert first is not None
    book(first)
    services.rule_save(
        tutor=tutor, rule=weekly_rule, now=now, start_time=time(19), end_time=time(21)
    )
    times = {s.start.astimezone(NY).time() for s in active(tutor).exclude(pk=first.pk)}
    assert times == {time(19), time(20)}
    assert active(tutor).filter(pk=first.pk).exists()  # the booked 18:00 slot stays


def test_editing_a_rules_offerings_updates_unbooked_slots(tutor, weekly_rule, remote, now):
    first = active(tutor).first()
    assert first is not None
    book(first)
    services.rule_save(tutor=tutor, rule=weekly_rule, now=now, offerings=[remote])
    others = active(tutor).exclude(pk=first.pk)
    assert not others.filter(in_person_offering__isnull=False).exists()
    first.refresh_from_db()
    assert first.in_person_offering_id is not None


def test_a_slot_the_tutor_deleted_is_not_recreated_by_its_rule(tutor, weekly_rule, now):
    victim = active(tutor).first()
    assert victim is not None
    services.slot_delete(slot=victim, now=now)
    slots_materialise(tutor=tutor, now=now)
    victim.refresh_from_db()
    assert victim.removed_reason == SlotRemoval.DELETED
    assert not active(tutor).filter(start=victim.start).exists()


def test_rules_skip_times_already_taken_by_a_one_off_slot(tutor, remote, now):
    start = datetime(2026, 12, 8, 18, 30, tzinfo=NY)  # a Tuesday, across two rule slots
    one_off = make_slot(tutor, start, remote=remote)
    services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[2],
        start_time=time(18),
        end_time=time(21),
        offerings=[remote],
    )
    that_evening = on_local_day(active(tutor), start.date())
    assert [s.start.astimezone(NY).time() for s in that_evening] == [time(18, 30), time(20)]
    assert that_evening.first() == one_off


def test_overlapping_rules_never_create_overlapping_slots(tutor, remote, now):
    for start in (time(18), time(18, 30)):
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[2],
            start_time=start,
            end_time=time(21),
            offerings=[remote],
        )
    slots = list(active(tutor))
    assert all(a.end <= b.start for a, b in pairwise(slots))
