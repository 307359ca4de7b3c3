"""Weekly wall-clock rules → UTC slots, across daylight-saving changes."""

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bookings.availability import local_to_utc, rule_candidates

NY = ZoneInfo("America/New_York")


def candidates(**kw):
    defaults = {"zone": NY, "duration": timedelta(minutes=60)}
    return list(rule_candidates(**{**defaults, **kw}))


def test_an_evening_rule_stays_at_18_local_on_both_sides_of_the_autumn_change() -> None:
    # US clocks fall back on Sunday 2026-11-01.
    slots = candidates(
        weekdays=[6, 1],  # Saturday before, Monday after
        start_time=time(18),
        end_time=time(19),
        first_day=date(2026, 10, 31),
        last_day=date(2026, 11, 2),
    )
    assert [(s.astimezone(NY).hour, s.astimezone(NY).minute) for s, _ in slots] == [(18, 0)] * 2
    assert [s.hour for s, _ in slots] == [22, 23]  # 18:00 EDT = 22:00Z, 18:00 EST = 23:00Z


def test_an_evening_rule_stays_at_18_local_on_both_sides_of_the_spring_change() -> None:
    # US clocks spring forward on Sunday 2027-03-14.
    slots = candidates(
        weekdays=[6, 1],
        start_time=time(18),
        end_time=time(19),
        first_day=date(2027, 3, 13),
        last_day=date(2027, 3, 15),
    )
    assert [s.astimezone(NY).time() for s, _ in slots] == [time(18)] * 2
    assert [s.hour for s, _ in slots] == [23, 22]


def test_local_times_that_do_not_exist_are_skipped() -> None:
    # 02:00–03:00 does not happen in New York on 2027-03-14.
    slots = candidates(
        weekdays=[7],
        start_time=time(1),
        end_time=time(4),
        first_day=date(2027, 3, 14),
        last_day=date(2027, 3, 14),
    )
    assert [s.astimezone(NY).strftime("%H:%M %Z") for s, _ in slots] == ["01:00 EST", "03:00 EDT"]
    assert local_to_utc(datetime(2027, 3, 14, 2, 30), NY) is None


def test_repeated_local_times_are_used_once() -> None:
    # 01:00–02:00 happens twice in New York on 2026-11-01.
    slots = candidates(
        weekdays=[7],
        start_time=time(0),
        end_time=time(3),
        first_day=date(2026, 11, 1),
        last_day=date(2026, 11, 1),
    )
    labels = [s.astimezone(NY).strftime("%H:%M %Z") for s, _ in slots]
    assert labels == ["00:00 EDT", "01:00 EDT", "02:00 EST"]
    assert all(e - s == timedelta(hours=1) for s, e in slots)


def test_a_slot_that_dst_would_push_past_the_window_end_is_left_out() -> None:
    # 90-minute slots in a 00:00–03:00 window on the spring-forward night: the second
    # would start at 01:30 EST and end at 04:00 EDT, past the 03:00 end of the window.
    slots = candidates(
        weekdays=[7],
        start_time=time(0),
        end_time=time(3),
        duration=timedelta(minutes=90),
        first_day=date(2027, 3, 14),
        last_day=date(2027, 3, 14),
    )
    assert [s.astimezone(NY).strftime("%H:%M") for s, _ in slots] == ["00:00"]


# --- properties over zones with DST and random rules ----------------------------------------

ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/St_Johns",  # half-hour offset
    "Pacific/Auckland",
    "America/Santiago",
    "UTC",
]

rules = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES).map(ZoneInfo),
        "weekdays": st.sets(st.integers(1, 7), min_size=1).map(sorted),
        "start_minute": st.integers(0, 23 * 60 + 44),
        "length": st.integers(15, 12 * 60),
        "duration": st.sampled_from([15, 30, 45, 50, 60, 90, 120]).map(
            lambda m: timedelta(minutes=m)
        ),
        # Spans around the DST changes of both hemispheres.
        "first_day": st.dates(date(2026, 3, 1), date(2027, 11, 30)),
        "days": st.integers(0, 21),
    }
)


def _expand(rule: dict) -> tuple[list[tuple[datetime, datetime]], dict]:
    start = rule["start_minute"]
    end = min(start + rule["length"], 23 * 60 + 59)
    params = {
        "weekdays": rule["weekdays"],
        "start_time": time(start // 60, start % 60),
        "end_time": time(end // 60, end % 60),
        "duration": rule["duration"],
        "zone": rule["zone"],
        "first_day": rule["first_day"],
        "last_day": rule["first_day"] + timedelta(days=rule["days"]),
    }
    return list(rule_candidates(**params)), params


@settings(max_examples=300, deadline=None)
@given(rules)
def test_generated_slots_never_overlap_and_have_the_rule_length(rule: dict) -> None:
    slots, params = _expand(rule)
    for (_, e1), (s2, _) in pairwise(slots):
        assert e1 <= s2
    assert all(e - s == params["duration"] for s, e in slots)
    assert all(s.tzinfo is UTC for s, _ in slots)


@settings(max_examples=300, deadline=None)
@given(rules)
def test_generated_slots_fall_inside_the_rules_local_window(rule: dict) -> None:
    slots, params = _expand(rule)
    zone = params["zone"]
    for start, end in slots:
        local_start = start.astimezone(zone)
        day = local_start.date()
        assert day.isoweekday() in params["weekdays"]
        assert params["first_day"] <= day <= params["last_day"]
        window_start = datetime.combine(day, params["start_time"])
        window_end = datetime.combine(day, params["end_time"])
        assert window_start <= local_start.replace(tzinfo=None)
        assert end.astimezone(zone).replace(tzinfo=None) <= window_end
        # The start is a real wall-clock time that maps back to itself.
        assert local_to_utc(local_start.replace(tzinfo=None), zone) == start


@settings(max_examples=100, deadline=None)
@given(rules)
def test_generation_is_stable_on_rerun(rule: dict) -> None:
    first, _ = _expand(rule)
    second, _ = _expand(rule)
    assert first == second
