"""1,000 tutors: does anything a student or the scheduler does grow with the tutor count?

    .venv/bin/python bench/scale.py [--tutors 1000] [--keep]

What it does, in one process, on PostgreSQL (each database name must contain "bench";
both are created here and dropped at the end unless --keep):

1. Two databases, migrated: "one" holds a single tutor, "many" grows to 1,000 tutors
   in three steps (100, 300, 1,000). Tutor 0 is the same in both (the same generator,
   the same random seed): bench/core.py's tutor (America/New_York, remote + NYC
   offerings, weekday evenings and weekend days), so the one-tutor figures are
   bench/core.py's method on bench/core.py's kind of calendar.
2. Each tutor as a real one looks after a month: offerings (some remote only), two
   weekly rules, four weeks of past slots and the 8-week horizon exactly as
   slots_materialise makes it (some withdrawn: deleted, inside a blocked period),
   one-off slots, and bookings in every status with their event log, payment rows and
   outbox rows (reminders still owed for future sessions, the rest sent): about 530
   slots and 200 bookings per tutor, ~530,000 slots and ~200,000 bookings in all.
   Rows go in with COPY (psycopg), not through the services, then ANALYZE.
3. The scheduler: after each step, the hourly task's service (tutors_materialise) runs
   at a moment one day later than the last, so every tutor's horizon gains one day's
   slots (the midnight run; the other hours find nothing to do); --repeats times, a
   day apart, the fastest run counting. Then peak Python memory (tracemalloc, one more
   run a day on, not timed). Target: at most linear in tutors, i.e. time and peak per
   tutor at 1,000 tutors within 1.5x of the figures at 100 tutors (runs minutes apart
   on a shared machine vary by a quarter; worse than linear would be 10x). First,
   once: a run at the seeding moment must change nothing, which shows the seeded
   calendars are exactly what the materialiser keeps.
4. Tutor 0 on "one" against tutor 0 on "many", in the same process, request by request
   alternating between the databases (Django's default connection is switched), with
   bench/core.py's measure_interleaved and its test client:
   - GET /api/slots/ for four weeks (bench/core.py's query): target <= 1.2x;
   - POST /api/bookings/ (a hold, a different open slot each time), twice: "cold", as
     the server stands (shown, not judged: on this shared cluster the indexes a hold
     writes do not fit in shared_buffers, see warm_hold_indexes), then "warm", with
     them read into shared_buffers: target <= 1.2x;
   - the reminder sweep's selection (notifications.due_ids) with the same 50 rows due
     in both (bench/reminders.py's setup): target <= 1.2x.
Prints a table with PASS/FAIL per target, and PostgreSQL's plans for the per-tutor
queries on "many" (EXPLAIN ANALYZE) when a target fails or with --explain. Exit status
1 when a target is missed and --check is given.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import core
from bench.core import Series, measure_interleaved

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tutoring_scale_bench"
STEPS = (100, 300, 1000)
TARGET = 1.2  # "many" against "one", for the slot list, the hold and the sweep
# The materialiser's time and peak memory per tutor, 1,000 tutors against 100: "at most
# linear". Its runs are minutes apart, not interleaved, and on this shared machine such
# runs differ by up to a quarter; anything worse than linear (a query per tutor reading
# every tutor's rows) would show as 3x at 300 tutors and 10x at 1,000.
LINEAR = 1.5
PAST_DAYS = 28
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
         "America/Sao_Paulo", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo",
         "Australia/Sydney"]  # fmt: skip
DUE_NOW = 50


# --- the tutors' shape ----------------------------------------------------------------------


@dataclass
class Plan:
    """One tutor, drawn from its own random stream (tutor 0 is bench/core.py's)."""

    index: int
    zone: ZoneInfo
    notice: int  # minutes
    buffer: int
    duration: int
    remote_price: int
    in_person_price: int | None
    weekdays: tuple[list[int], clock, clock]  # the weekday rule
    weekend: tuple[list[int], clock, clock]
    one_offs: bool  # a Sunday-evening one-off slot every week
    block_days: tuple[int, int] | None  # a blocked stretch (days from today), if any

    @classmethod
    def draw(cls, index: int, seed: int) -> Plan:
        rng = random.Random(seed * 100_003 + index)
        if index == 0:
            return cls(0, ZoneInfo(core.ZONE_NAME), 720, 30, 60, 9000, 12000,
                       ([1, 2, 3, 4, 5], clock(16), clock(21)), ([6, 7], clock(10), clock(18)),
                       True, None)  # fmt: skip
        duration = rng.choice([45, 60, 60, 60, 90])
        start = rng.randint(8, 17)
        return cls(
            index,
            ZoneInfo(rng.choice(ZONES)),
            rng.choice([0, 120, 720, 720, 1440]),
            rng.choice([15, 30, 30, 60]),
            duration,
            rng.randrange(4000, 15000, 500),
            rng.randrange(6000, 20000, 500) if rng.random() < 0.6 else None,
            (sorted(rng.sample(range(1, 6), rng.randint(4, 5))), clock(start),
             clock(min(start + 5 * duration // 60 + 1, 23))),
            ([6, 7], clock(rng.randint(9, 11)), clock(18)),
            rng.random() < 0.3,
            (rng.randint(10, 30), rng.randint(2, 5)) if rng.random() < 0.1 else None,
        )  # fmt: skip


def _utc(day: date, at: clock, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, zone).astimezone(UTC)


def _horizon_end(zone: ZoneInfo, now: datetime) -> datetime:
    """availability.horizon_end, for a zone rather than a Tutor row."""
    from django.conf import settings

    last = now.astimezone(zone).date() + timedelta(weeks=settings.SLOT_HORIZON_WEEKS)
    return datetime.combine(last + timedelta(days=1), clock(), zone).astimezone(UTC)


# --- rows ------------------------------------------------------------------------------------


class Ids:
    """Explicit ids for the tables whose rows others point at."""

    def __init__(self, pg: psycopg.Connection) -> None:
        self.next: dict[str, int] = {}
        for table in ("auth_user", "bookings_tutor", "bookings_offering",
                      "bookings_availabilityrule", "bookings_slot"):  # fmt: skip
            row = pg.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}").fetchone()  # noqa: S608
            self.next[table] = int(row[0]) if row else 1

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


@dataclass
class Rows:
    """Rows by model, as {column: value}; written with COPY."""

    by_model: dict[type[Model], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, model: type[Model], **row: Any) -> dict[str, Any]:
        self.by_model.setdefault(model, []).append(row)
        return row


def copy_rows(pg: psycopg.Connection, model: type[Model], rows: list[dict[str, Any]]) -> None:
    """COPY `rows` into the model's table. Columns a row leaves out take the field's
    default (so a column added later with a default needs no change here); a pk left
    out is generated by the database."""
    from django.db.models import JSONField

    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and rows and f.column not in rows[0])
    ]
    columns = [f.column for f in fields]
    json_columns = {f.column for f in fields if isinstance(f, JSONField)}
    # A callable default (uuid4, new_key, new_calendar_uid) is called per row, as Django would.
    fallback = {f.column: f.get_default for f in fields if callable(f.default)}
    static = {f.column: f.get_default() for f in fields if not callable(f.default)}
    names = ", ".join(f'"{c}"' for c in columns)
    table = model._meta.db_table
    with pg.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            values = []
            for column in columns:
                if column in row:
                    value = row[column]
                elif column in fallback:
                    value = fallback[column]()
                else:
                    value = static[column]
                if column in json_columns:
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)


STATUS_PAST = (["completed", "cancelled", "expired", "no_show"], [72, 14, 9, 5])
STATUS_FUTURE = (["confirmed", "pending_payment", "cancelled", "expired"], [85, 5, 7, 3])


class Seeder:
    """Writes tutors [first, last) into one database, shaped like months of real use."""

    def __init__(self, url: str, *, seed: int, t0: datetime) -> None:
        self.url = url
        self.random_seed = seed
        self.t0 = t0  # "now" for the history: bookings are past or future of it

    def seed(self, indexes: range, *, horizon_now: datetime) -> None:
        """Tutors `indexes`, 100 at a time (each batch one transaction), then ANALYZE."""
        with psycopg.connect(_psycopg_url(self.url)) as pg:
            for first in range(indexes.start, indexes.stop, 100):
                self._batch(pg, range(first, min(first + 100, indexes.stop)), horizon_now)
                pg.commit()
            pg.autocommit = True
            pg.execute("ANALYZE")

    def _batch(self, pg: psycopg.Connection, indexes: range, horizon_now: datetime) -> None:
        from bookings.models import (
            AvailabilityRule,
            BlockedPeriod,
            Booking,
            BookingEvent,
            Notification,
            Offering,
            Slot,
            Tutor,
        )
        from payments.models import Payment

        ids = Ids(pg)
        rows = Rows()
        for index in indexes:
            self._tutor(rows, ids, Plan.draw(index, self.random_seed), horizon_now)
        order: list[type[Model]] = [get_user_model(), Tutor, Offering, AvailabilityRule,
                 AvailabilityRule.offerings.through, BlockedPeriod, Slot, Booking, BookingEvent,
                 Payment, Notification]  # fmt: skip
        for model in order:
            copy_rows(pg, model, rows.by_model.get(model, []))
        for table in ids.next:
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )

    def _tutor(self, rows: Rows, ids: Ids, plan: Plan, horizon_now: datetime) -> None:
        from bookings.availability import rule_candidates
        from bookings.models import (
            AvailabilityRule,
            BlockedPeriod,
            Offering,
            Slot,
            Tutor,
        )

        rng = random.Random(self.random_seed * 7_919 + plan.index)
        t0, i = self.t0, plan.index
        joined = t0 - timedelta(days=rng.randint(60, 900))
        user_id = ids.take("auth_user")
        unusable = "!"  # what set_unusable_password() stores
        rows.add(get_user_model(), id=user_id, password=unusable, username=f"scale-tutor-{i}",
                 email=f"tutor{i}@example.com", is_active=True, date_joined=joined)  # fmt: skip
        tutor_id = ids.take("bookings_tutor")
        rows.add(
            Tutor,
            id=tutor_id,
            user_id=user_id,
            slug=f"tutor-{i:04d}" if i else "ada-bench",
            display_name=f"Tutor {i}",
            headline="Python tutoring",
            bio="Patient, practical, exercises between sessions.",
            email=f"tutor{i}@example.com",
            timezone=plan.zone.key,
            currency="usd",
            min_notice_minutes=plan.notice,
            travel_buffer_minutes=plan.buffer,
            full_refund_hours=24,
            is_active=True,
            created_at=joined,
            availability_version=0,
        )
        remote_id = ids.take("bookings_offering")
        rows.add(Offering, id=remote_id, tutor_id=tutor_id, mode="remote",
                 title="Python (video)", duration_minutes=plan.duration,
                 price_amount=plan.remote_price, currency="usd",
                 video_url=f"https://meet.example.com/t{i}", is_active=True,
                 created_at=joined)  # fmt: skip
        in_person_id = None
        if plan.in_person_price is not None:
            in_person_id = ids.take("bookings_offering")
            rows.add(Offering, id=in_person_id, tutor_id=tutor_id, mode="in_person",
                     title="Python (in person)", duration_minutes=plan.duration,
                     price_amount=plan.in_person_price, currency="usd",
                     place_name="Bryant Park Cafe",
                     place_address="40 W 40th St, New York, NY 10018", is_active=True,
                     created_at=joined)  # fmt: skip
        offering_ids = [o for o in (remote_id, in_person_id) if o is not None]

        today = t0.astimezone(plan.zone).date()
        first_day = today - timedelta(days=PAST_DAYS)
        until = _horizon_end(plan.zone, horizon_now)
        blocked: list[tuple[datetime, datetime]] = []
        if plan.block_days:
            offset, length = plan.block_days
            b_start = _utc(today + timedelta(days=offset), clock(), plan.zone)
            b_end = b_start + timedelta(days=length)
            rows.add(BlockedPeriod, tutor_id=tutor_id, start=b_start, end=b_end,
                     reason="Holiday", created_at=t0 - timedelta(days=3))  # fmt: skip
            blocked.append((b_start, b_end))

        def is_blocked(start: datetime, end: datetime) -> bool:
            return any(s < end and e > start for s, e in blocked)

        slots: list[dict[str, Any]] = []

        def add_slot(start: datetime, end: datetime, rule_id: int | None) -> None:
            removed, reason = None, ""
            if start > t0 and is_blocked(start, end):
                removed, reason = t0 - timedelta(days=3), "blocked"
            elif start > t0 + timedelta(days=1) and rng.random() < 0.015:
                removed, reason = t0 - timedelta(days=rng.randint(1, 20)), "deleted"
            slots.append(
                rows.add(
                    Slot,
                    id=ids.take("bookings_slot"),
                    tutor_id=tutor_id,
                    start=start,
                    end=end,
                    source="rule" if rule_id else "one_off",
                    rule_id=rule_id,
                    remote_offering_id=remote_id,
                    in_person_offering_id=in_person_id if rule_id else None,
                    removed_at=removed,
                    removed_reason=reason,
                    created_at=min(start - timedelta(weeks=8), t0),
                )
            )

        duration = timedelta(minutes=plan.duration)
        for weekdays, start_at, end_at in (plan.weekdays, plan.weekend):
            rule_id = ids.take("bookings_availabilityrule")
            rows.add(AvailabilityRule, id=rule_id, tutor_id=tutor_id, weekdays=weekdays,
                     start_time=start_at, end_time=end_at, is_active=True, created_at=joined,
                     updated_at=joined)  # fmt: skip
            for offering_id in offering_ids:
                rows.add(
                    AvailabilityRule.offerings.through,
                    availabilityrule_id=rule_id,
                    offering_id=offering_id,
                )
            for start, end in rule_candidates(
                weekdays=weekdays, start_time=start_at, end_time=end_at, duration=duration,
                zone=plan.zone, first_day=first_day, last_day=until.astimezone(plan.zone).date(),
            ):  # fmt: skip
                if start < until:
                    add_slot(start, end, rule_id)
        if plan.one_offs:  # Sunday 19:00, after the weekend rule's end (18:00)
            day = first_day + timedelta(days=(7 - first_day.isoweekday()) % 7)
            while day <= until.astimezone(plan.zone).date():
                start = _utc(day, clock(19), plan.zone)
                if start < until:
                    add_slot(start, start + duration, None)
                day += timedelta(weeks=1)
        slots.sort(key=lambda s: s["start"])
        self._bookings(rows, rng, plan, tutor_id, remote_id, in_person_id, slots)

    def _bookings(
        self,
        rows: Rows,
        rng: random.Random,
        plan: Plan,
        tutor_id: int,
        remote_id: int,
        in_person_id: int | None,
        slots: list[dict[str, Any]],
    ) -> None:
        """Bookings on about 90 % of past slots and 17 % of future ones, each with the
        events, payment and outbox rows its life would have left; no two active ones
        break the one-per-slot or travel-buffer rules."""
        t0 = self.t0
        buffer = timedelta(minutes=plan.buffer)
        last_active: tuple[datetime, str] | None = None  # (end, mode)
        for slot in slots:
            if slot["removed_at"] is not None:
                continue
            past = slot["end"] <= t0
            if rng.random() >= (0.9 if past else 0.17):
                continue
            statuses, weights = STATUS_PAST if past else STATUS_FUTURE
            status = rng.choices(statuses, weights)[0]
            active = status in ("confirmed", "pending_payment") or (
                past and status in ("completed", "no_show")
            )
            mode = "in_person" if in_person_id and slot["in_person_offering_id"] and (
                rng.random() < 0.35
            ) else "remote"  # fmt: skip
            if active and last_active is not None and last_active[0] + buffer > slot["start"]:
                if last_active[1] == "in_person":
                    continue  # the tutor is travelling: nobody could have booked it
                mode = "remote"
            if active:
                last_active = (slot["end"], mode)
            price = plan.remote_price if mode == "remote" else plan.in_person_price or 0
            self._booking(rows, rng, slot, tutor_id, mode, status, price,
                          remote_id if mode == "remote" else in_person_id or remote_id)  # fmt: skip

    def _booking(
        self,
        rows: Rows,
        rng: random.Random,
        slot: dict[str, Any],
        tutor_id: int,
        mode: str,
        status: str,
        price: int,
        offering_id: int,
    ) -> None:
        from bookings.models import Booking, BookingEvent, Notification
        from payments.models import Payment

        t0 = self.t0
        start = slot["start"]
        created = min(start - timedelta(hours=rng.randint(13, 24 * 21)), t0 - timedelta(hours=1))
        booking_id = uuid.uuid4()
        student = rng.randrange(60_000)
        booking = rows.add(
            Booking,
            id=booking_id,
            tutor_id=tutor_id,
            slot_id=slot["id"],
            offering_id=offering_id,
            mode=mode,
            student_name=f"Student {student}",
            student_email=f"student{student}@example.com",
            student_timezone=rng.choice(["", "America/New_York", "Europe/London", "UTC"]),
            notes=rng.choice(["", "Decorators, please", "Interview prep", "pandas basics"]),
            price_amount=price,
            currency="usd",
            status=status,
            hold_expires_at=None,
            client_digest=secrets.token_hex(32) if status == "pending_payment" else "",
            request_key=None,
            refund_amount=0,
            sequence=0,
            created_at=created,
            updated_at=created,
            confirmed_at=None,
            cancelled_at=None,
        )

        def event(src: str, dst: str, actor: str, reason: str, at: datetime, **data: Any) -> None:
            rows.add(BookingEvent, booking_id=booking_id, from_status=src, to_status=dst,
                     actor=actor, reason=reason, data=data, at=at)  # fmt: skip

        def note(kind: str, recipient: str, key: str, due: datetime, state: str) -> None:
            context = {"start": start.isoformat(), "end": slot["end"].isoformat(), "sequence": 0}
            sent = due if state == "sent" else None
            rows.add(Notification, booking_id=booking_id, kind=kind, recipient=recipient,
                     key=key, context=context, due_at=due, state=state,
                     attempts=1 if sent else 0, sent_at=sent, last_error="",
                     created_at=created)  # fmt: skip

        event("", "pending_payment", "student", "held", created)
        session = uuid.uuid4().hex
        payment = {
            "id": uuid.uuid4(), "booking_id": booking_id, "provider": "stripe", "amount": price,
            "currency": "usd", "status": "open", "checkout_session_id": f"cs_test_{session}",
            "checkout_url": f"https://checkout.stripe.com/c/pay/cs_test_{session}",
            "created_at": created, "updated_at": created,
        }  # fmt: skip
        if status == "pending_payment":
            booking["hold_expires_at"] = t0 + timedelta(minutes=rng.randint(10, 29))
            rows.add(Payment, **payment)
            return
        if status == "expired" or (status == "cancelled" and rng.random() < 0.4):
            ended = created + timedelta(minutes=30 if status == "expired" else rng.randint(1, 25))
            booking["hold_expires_at"] = created + timedelta(minutes=30)
            booking["updated_at"] = ended
            if status == "expired":
                event("pending_payment", "expired", "system", "hold_expired", ended)
                note("hold_expired", "student", "1", ended + timedelta(minutes=10), "sent")
            else:
                booking["cancelled_at"] = ended
                event("pending_payment", "cancelled", "student", "cancelled by student", ended)
            rows.add(Payment, **{**payment, "status": "expired", "updated_at": ended})
            return
        paid = created + timedelta(minutes=rng.randint(2, 20))
        booking["confirmed_at"] = booking["updated_at"] = paid
        event("pending_payment", "confirmed", "payment", "paid", paid)
        payment.update(status="paid", paid_at=paid, updated_at=paid, received_amount=price,
                       received_currency="usd", payment_intent_id=f"pi_{session[:24]}")  # fmt: skip
        for recipient in ("student", "tutor"):
            note("confirmed", recipient, "1", paid, "sent")
        cancelled = status == "cancelled"
        cancel_at = paid + timedelta(
            seconds=rng.uniform(60, max((start - paid).total_seconds(), 120))
        )
        for minutes in (1440, 60):
            due = start - timedelta(minutes=minutes)
            if due <= paid:
                continue
            state = "void" if cancelled and due > cancel_at else "sent" if due <= t0 else "pending"
            note("reminder", "student", f"{minutes}m@{start.isoformat()}", due, state)
        if cancelled:
            refund = price if cancel_at <= start - timedelta(hours=24) else 0
            booking.update(cancelled_at=cancel_at, updated_at=cancel_at, refund_amount=refund,
                           sequence=1)  # fmt: skip
            payment["refunded_amount"] = refund
            event("confirmed", "cancelled", "student", "cancelled by student", cancel_at,
                  refund_amount=refund, currency="usd")  # fmt: skip
            for recipient in ("student", "tutor"):
                note("cancelled", recipient, "2", cancel_at, "sent")
        elif status in ("completed", "no_show"):
            done = slot["end"] + timedelta(hours=rng.randint(1, 30))
            booking["updated_at"] = min(done, t0)
            event("confirmed", status, "tutor", f"marked {status}", min(done, t0))
        rows.add(Payment, **payment)


def get_user_model() -> type[Model]:
    from django.contrib.auth import get_user_model as user_model

    return user_model()


def _psycopg_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


# --- two databases, one process -------------------------------------------------------------


class Databases:
    """Django's default connection, switched between the two databases at will."""

    def __init__(self, urls: dict[str, str]) -> None:
        from django.db import connections

        self.urls = urls
        self.wrappers: dict[str, BaseDatabaseWrapper] = {}
        base = connections["default"]
        for name, url in urls.items():
            settings_dict = {**base.settings_dict, "NAME": urlsplit(url).path.lstrip("/")}
            self.wrappers[name] = base.__class__(settings_dict, alias="default")
        self.current = ""

    def use(self, name: str) -> None:
        from django.db import connections

        if name != self.current:
            connections["default"] = self.wrappers[name]
            self.current = name

    def close(self) -> None:
        for wrapper in self.wrappers.values():
            wrapper.close()


def alternating(dbs: Databases, name: str, run: core.Sample) -> core.Sample:
    def sample(i: int) -> Any:
        dbs.use(name)
        return run(i)

    return sample


# --- the scheduler --------------------------------------------------------------------------


@dataclass
class MaterialiseRun:
    tutors: int
    slots: int
    created: int
    seconds: float
    peak_bytes: int


def materialise(now: datetime, *, tutors: int, repeats: int) -> MaterialiseRun:
    """The hourly task's service at `now` and on each of the next `repeats - 1` days (each
    run adds a day's slots), timed: the fastest run counts, the one least disturbed by
    other work on the machine. Then once more, a day later, under tracemalloc."""
    from bookings import services
    from bookings.models import Slot

    times, created = [], 0
    for day in range(repeats):
        started = time.perf_counter()
        created = services.tutors_materialise(now=now + timedelta(days=day))
        times.append(time.perf_counter() - started)
    seconds = min(times)
    tracemalloc.start()
    try:
        services.tutors_materialise(now=now + timedelta(days=repeats))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return MaterialiseRun(tutors, Slot.objects.count(), created, seconds, peak)


def unchanged_by_materialise(now: datetime) -> str:
    """What a run at the seeding moment changes (nothing, if the seeded calendars are
    exactly what slots_materialise keeps): "" or a description of the changes."""
    from bookings.availability import slots_materialise
    from bookings.models import Tutor

    totals: dict[str, int] = {}
    for tutor in Tutor.objects.filter(is_active=True):
        result = slots_materialise(tutor=tutor, now=now)
        for key, value in vars(result).items():
            totals[key] = totals.get(key, 0) + value
    return ", ".join(f"{k} {v}" for k, v in totals.items() if v)


# --- the student's requests -----------------------------------------------------------------


@dataclass
class Window:
    first: date
    last: date
    start: datetime
    end: datetime


def window(now: datetime) -> Window:
    zone = ZoneInfo(core.ZONE_NAME)
    today = now.astimezone(zone).date()
    first, last = today + timedelta(days=1), today + timedelta(days=1 + core.WINDOW_DAYS)
    return Window(
        first, last, _utc(first, clock(), zone), _utc(last + timedelta(days=1), clock(), zone)
    )


def hold_pool(now: datetime, start: datetime) -> list[int]:
    from bookings import selectors

    tutor = selectors.tutor_public("ada-bench", with_offerings=False)
    items = selectors.open_slots(
        start=start, end=start + timedelta(days=62), now=now, tutor=tutor, mode="remote"
    )
    return [item.slot.pk for item in items]


def requests(client: Any, win: Window) -> tuple[core.Sample, Callable[[list[int]], core.Sample]]:
    query = {"tutor": "ada-bench", "start": win.first.isoformat(),
             "end": win.last.isoformat(), "tz": core.ZONE_NAME}  # fmt: skip

    def slots(i: int) -> Any:
        return core._expect(client.get("/api/slots/", query), 200, "GET /api/slots/")

    def holds(pool: list[int]) -> core.Sample:
        slots_left = iter(pool)

        def hold(i: int) -> Any:
            slot_id = next(slots_left)
            body = {"slot": slot_id, "mode": "remote", "student_name": f"Scale Student {i}",
                    "student_email": f"scale.{i}.{slot_id}@example.com",
                    "student_timezone": "Europe/Berlin"}  # fmt: skip
            response = client.post("/api/bookings/", body, content_type="application/json",
                                   REMOTE_ADDR=f"2001:db8:{slot_id:x}::1")  # fmt: skip
            return core._expect(response, 201, f"POST /api/bookings/ (slot {slot_id})")

        return hold

    return slots, holds


def due_now(now: datetime) -> None:
    """bench/reminders.py's setup: the same DUE_NOW pending rows due a minute ago."""
    from bookings.models import Notification

    pending = Notification.objects.filter(state="pending").order_by("due_at", "id")
    ids = list(pending.values_list("pk", flat=True)[:DUE_NOW])
    Notification.objects.filter(pk__in=ids).update(due_at=now - timedelta(minutes=1))


def warm_hold_indexes() -> str:
    """Read the indexes of the tables a hold inserts into into shared_buffers (pg_prewarm).

    A hold inserts a booking, its event and its payment: about a dozen index entries,
    most at random places (UUID keys, tokens and their digests, each unique varchar
    also with a `_like` pattern index). On "many" those indexes are ~250 MB, more than
    this shared cluster's shared_buffers (128 MB, PostgreSQL's default), so each entry
    costs a read from the OS cache and a full-page WAL image. A server sized for its
    data keeps them cached; this shows the hold with them cached.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        cursor.execute(
            "SELECT count(pg_prewarm(i.indexrelid)) FROM pg_index i WHERE i.indrelid IN "
            "('bookings_booking'::regclass, 'bookings_bookingevent'::regclass, "
            "'payments_payment'::regclass)"
        )
        row = cursor.fetchone()
    return f"{row[0] if row else 0} indexes"


# --- the plans --------------------------------------------------------------------------------


def explain(now: datetime, win: Window) -> list[str]:
    """EXPLAIN ANALYZE of each per-tutor read the targets time, on the current database."""
    from django.db import connection

    from bookings import selectors
    from bookings.models import ACTIVE_STATUSES, Booking, Notification, Slot

    tutor = selectors.tutor_public("ada-bench", with_offerings=False)
    queries = {
        "slot list: the tutor's slots": Slot.objects.filter(
            tutor=tutor, removed_at__isnull=True, start__gte=max(win.start, now),
            start__lt=win.end,
        ).order_by("start"),
        "slot list: active bookings nearby": Booking.objects.filter(
            tutor_id__in=[tutor.pk], status__in=ACTIVE_STATUSES, slot__start__lt=win.end,
            slot__end__gt=win.start,
        ).values_list("id", "slot__start"),
        "materialise: future slots": Slot.objects.filter(tutor=tutor, end__gt=now),
        "materialise: booked slots": Booking.objects.filter(
            tutor=tutor, status__in=ACTIVE_STATUSES, slot__end__gt=now
        ).values_list("slot_id", flat=True),
        "sweep: due rows": Notification.objects.filter(state="pending", due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:500],
    }  # fmt: skip
    out = []
    with connection.cursor() as cursor:
        for label, qs in queries.items():
            sql, params = qs.query.sql_with_params()
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
            out.append(f"  {label}")
            out += [f"      {row[0]}" for row in cursor.fetchall()]
    return out


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the many-tutor database ('_one' added: the other)",
    )
    parser.add_argument("--tutors", type=int, default=STEPS[-1])
    parser.add_argument("--slots-iterations", type=int, default=200)
    parser.add_argument("--holds-iterations", type=int, default=100)
    parser.add_argument("--sweep-iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed materialiser runs per step (fastest counts)"
    )
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--explain", action="store_true", help="print the plans even on PASS")
    parser.add_argument("--keep", action="store_true", help="leave both databases behind")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    many = args.database_url
    parts = urlsplit(many)
    one = urlunsplit(parts._replace(path=parts.path + "_one"))
    for url in (many, one):
        core.recreate_database(url)
    try:
        core.setup_django(many)
        return run(args, {"many": many, "one": one})
    finally:
        if args.keep:
            print(f"Kept the databases: {many}, {one}")
        else:
            from django.db import connections

            connections.close_all()
            for url in (many, one):
                core._drop_and_maybe_create(url, create=False)


def run(args: argparse.Namespace, urls: dict[str, str]) -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from bookings.notifications import due_ids

    began = time.perf_counter()
    dbs = Databases(urls)
    dbs.use("one")
    call_command("migrate", interactive=False, verbosity=0)
    core.print_pairs("Machine", core.machine())

    t0 = timezone.now().replace(microsecond=0)
    steps = [n for n in STEPS if n < args.tutors] + [args.tutors]
    one = Seeder(urls["one"], seed=args.seed, t0=t0)
    many = Seeder(urls["many"], seed=args.seed, t0=t0)
    one.seed(range(1), horizon_now=t0)

    # 1. The scheduler at 100, 300, 1,000 tutors: each step adds tutors with the horizon
    # the others already have, then moves the clock a day (twice: timed, then traced).
    print("The hourly materialiser (tutors_materialise) over every tutor, a day later each run")
    print(f"{'tutors':>7} {'slots':>9} {'bookings':>9} {'seeded':>7} {'created':>8} "
          f"{'time s':>7} {'ms/tutor':>9} {'peak MiB':>9} {'KiB/tutor':>10}")  # fmt: skip
    runs: list[MaterialiseRun] = []
    clock_now = t0
    seeded = 0
    for n in steps:
        started = time.perf_counter()
        many.seed(range(seeded, n), horizon_now=clock_now)
        seed_s = time.perf_counter() - started
        seeded = n
        dbs.use("many")
        from bookings.models import Booking

        bookings = Booking.objects.count()
        if n == steps[0]:
            changed = unchanged_by_materialise(clock_now)
            if changed:
                raise SystemExit(
                    f"The seeded calendars are not what the materialiser keeps: {changed}"
                )
        clock_now += timedelta(days=1)
        result = materialise(clock_now, tutors=n, repeats=args.repeats)
        clock_now += timedelta(days=args.repeats)
        runs.append(result)
        print(
            f"{n:7,} {result.slots:9,} {bookings:9,} {seed_s:6.0f}s {result.created:8,} "
            f"{result.seconds:7.2f} {1000 * result.seconds / n:9.2f} "
            f"{result.peak_bytes / 2**20:9.1f} {result.peak_bytes / 1024 / n:10.1f}"
        )
    dbs.use("one")  # the same days for tutor 0 alone, so its calendar matches
    day = t0
    for _ in steps:
        day += timedelta(days=1)
        materialise(day, tutors=1, repeats=args.repeats)
        day += timedelta(days=args.repeats)
    print(f"  (first, at the seeding moment: a run over the {steps[0]} seeded tutors changed "
          "nothing, so the seeded calendars are what slots_materialise keeps)")  # fmt: skip
    first, last = runs[0], runs[-1]
    time_ratio = (last.seconds / last.tutors) / (first.seconds / first.tutors)
    memory_ratio = (last.peak_bytes / last.tutors) / (first.peak_bytes / first.tutors)
    print()

    # 2. Tutor 0, on one database against the other, request by request. A checkpoint
    # first, so the writes the seeding left behind are not flushed during the timing
    # (what follows pays the full-page WAL images of any checkpoint, as in production).
    for name in ("many", "one"):
        dbs.use(name)
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    now = timezone.now()
    win = window(now)
    client = Client()
    slots, holds = requests(client, win)
    series: list[tuple[str, Series, Series]] = []
    a, b = Series("many"), Series("one")
    measure_interleaved(a, alternating(dbs, "many", slots), b, alternating(dbs, "one", slots),
                        iterations=args.slots_iterations, warmup=args.warmup)  # fmt: skip
    series.append(("GET /api/slots/ (4 weeks, tz)", a, b))
    bodies = {}
    for name in ("many", "one"):
        dbs.use(name)
        bodies[name] = json.loads(slots(0).content)["results"]
    same_list = bodies["many"] == bodies["one"]

    pools = {}
    for name in ("many", "one"):
        dbs.use(name)
        pools[name] = hold_pool(now, win.start)
    wanted = args.warmup + args.holds_iterations
    if min(len(p) for p in pools.values()) < 2 * wanted:
        raise SystemExit(f"Only {min(len(p) for p in pools.values())} open slots to hold.")
    # Twice: as the server stands, then with the indexes a hold writes read into
    # shared_buffers (see warm_hold_indexes).
    for label, rest in (("cold", slice(0, wanted)), ("warm", slice(wanted, None))):
        if label == "warm":
            for name in ("many", "one"):
                dbs.use(name)
                warm_hold_indexes()
        a, b = Series("many"), Series("one")
        measure_interleaved(
            a, alternating(dbs, "many", holds(pools["many"][rest])),
            b, alternating(dbs, "one", holds(pools["one"][rest])),
            iterations=args.holds_iterations, warmup=args.warmup,
        )  # fmt: skip
        series.append((f"POST /api/bookings/ (hold, {label})", a, b))

    found: dict[str, int] = {}
    for name in ("many", "one"):
        dbs.use(name)
        due_now(now)
        found[name] = len(due_ids(now=now))

    def sweep(name: str) -> core.Sample:
        def select(i: int) -> Any:
            dbs.use(name)
            return due_ids(now=now)

        return select

    a, b = Series("many"), Series("one")
    measure_interleaved(a, sweep("many"), b, sweep("one"), iterations=args.sweep_iterations,
                        warmup=args.warmup)  # fmt: skip
    series.append(("reminder sweep selection (due_ids)", a, b))

    print(f"Tutor 0 with {args.tutors - 1:,} other tutors ('many') against alone ('one'), "
          "interleaved; ms")  # fmt: skip
    head = (f"{'measurement':<42} {'one med':>8} {'many med':>9} {'one p90':>8} {'many p90':>9}"
            f" {'ratio':>7} {'target':>7}  verdict")  # fmt: skip
    print(head)
    print("-" * len(head))
    verdicts: list[tuple[str, bool]] = []
    for label, big, small in series:
        ratio = big.median / small.median
        counted = "cold" not in label  # shown for what it says about the server's cache
        if counted:
            verdicts.append((label, ratio <= TARGET))
        verdict = ("PASS" if ratio <= TARGET else "FAIL") if counted else "info"
        print(f"{label:<42} {small.median:8.2f} {big.median:9.2f} {small.p90:8.2f} "
              f"{big.p90:9.2f} {ratio:6.2f}x {TARGET:6.1f}x  {verdict}")  # fmt: skip
    verdicts.append(("materialise time per tutor, 1,000 vs 100 tutors", time_ratio <= LINEAR))
    verdicts.append(("materialise peak memory per tutor, 1,000 vs 100", memory_ratio <= LINEAR))
    print(f"{'materialise: time per tutor, ' + f'{last.tutors:,} vs {first.tutors:,}':<42} "
          f"{1000 * first.seconds / first.tutors:8.2f} {1000 * last.seconds / last.tutors:9.2f}"
          f" {'':>8} {'':>9} {time_ratio:6.2f}x {LINEAR:6.1f}x  "
          f"{'PASS' if time_ratio <= LINEAR else 'FAIL'}")  # fmt: skip
    print(f"{'materialise: peak KiB per tutor':<42} "
          f"{first.peak_bytes / 1024 / first.tutors:8.1f} "
          f"{last.peak_bytes / 1024 / last.tutors:9.1f} {'':>8} {'':>9} {memory_ratio:6.2f}x "
          f"{LINEAR:6.1f}x  {'PASS' if memory_ratio <= LINEAR else 'FAIL'}")  # fmt: skip
    print()
    print(f"  the slot list answers the same {len(bodies['one'])} slots on both: {same_list}")
    print(f"  due rows found: one {found['one']}, many {found['many']}")
    counts = {}
    for name in ("one", "many"):
        dbs.use(name)
        counts[name] = core.count_queries(slots)
    print(f"  queries per slot list: one {counts['one'].statements}, "
          f"many {counts['many'].statements}")  # fmt: skip
    ok = all(passed for _, passed in verdicts) and same_list
    if args.explain or not ok:
        dbs.use("many")
        print("\nPlans on 'many' (EXPLAIN ANALYZE)")
        print("\n".join(explain(now, win)))
    print(f"\nRan in {time.perf_counter() - began:.0f} s.")
    print("Overall:", "PASS" if ok else "FAIL")
    dbs.close()
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
