"""Latency benchmark of the two hot public endpoints, each against a fair floor.

    .venv/bin/python bench/core.py [--database-url postgres://…/tutoring_bench] [--keep]

What it does, in one process:

1. Drops and re-creates the bench database (its name must contain "bench"), points
   Django at it through DATABASE_URL with config.settings.test (DEBUG stays False, so
   no query log is kept) and runs the migrations.
2. Seeds one tutor (America/New_York) with a remote and an in-person offering, two
   weekly rules, five years of history (~15,000 slots, ~5,000 past bookings with their
   events and payments) and the usual 8-week horizon of future slots, ~20 % of the next
   four weeks already booked, then ANALYZEs, as autovacuum would have in production.
3. Times, in-process through django.test.Client (no sockets, so no network noise):
   - GET /api/slots/ for a four-week window of future slots with open times,
   - the same request again with the ETag the first answer gave (If-None-Match): a
     client re-reading an unchanged list gets 304 from the tutor's row alone
     (bookings/conditional.py),
   - the tutor's page /t/<slug>/ the same way (an anonymous visitor reloading a popular
     tutor's page: 304 without the slot query), and
   - POST /api/bookings/ (a hold, through the simulated payment provider of the test
     settings), each on a different open slot for a different student email.
4. Times the floors in the same run, interleaved request by request with the endpoint
   they bound (the order of each pair alternates, so drift hits both sides alike):
   - slots floor: a plain function view running the one indexed query the slot list
     cannot avoid (the tutor's active slots starting in the window, by start, via the
     partial index slot_active_by_start) as a `.values()` list, rendered by JsonResponse;
   - insert floor: a plain function view that parses the same JSON body, inserts one
     row (a django.contrib.sessions Session) inside transaction.atomic() and answers 201.

Why the floors are fair: they are served by the same settings, middleware stack, URL
resolver, WSGI handler, test client, database connection (CONN_MAX_AGE and health
checks as configured) and PostgreSQL, from bench/floor_urls.py, which includes the
app's own config.urls. They skip only what is specific to the endpoint: DRF, parsing,
the business rules, the extra queries and commits, the serializers. No endpoint could
be faster than its floor, so median/floor-median is the overhead the app adds on top
of the irreducible work: the targets are slots <= 3x and hold <= 4x. The repeated slot
list and the repeated tutor page are each timed against the same slots floor (a series
of it of their own): skipping the query that floor runs is their point, so their target
is <= 1x.

Prints the machine, the data set, median/p90/p99 of each series, the ratios with
PASS/FAIL, and how many SQL statements each request runs (captured on one extra request;
--show-sql prints them). The bench database is dropped at the end unless --keep.
--profile N adds a cProfile of N more requests per endpoint; --check exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from django.http import HttpResponse, HttpResponseBase
    from django.test import Client

    from bookings.models import AvailabilityRule, Booking, BookingEvent, Offering, Slot, Tutor
    from payments.models import Payment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tutoring_bench"
SETTINGS_MODULE = "config.settings.test"
ZONE_NAME = "America/New_York"
HISTORY_DAYS = round(5 * 365.25)
PAST_BOOKINGS = 5_000
FUTURE_BOOKED_SHARE = 0.2
WINDOW_DAYS = 27  # end = start + 27 days, inclusive: four whole weeks
# The repeated slot list (If-None-Match, answered 304 from the tutor's row) must beat the
# floor, whose one query it exists to avoid.
TARGETS = {"slots": 3.0, "slots_304": 1.0, "page_304": 1.0, "hold": 4.0}

Sample = Callable[[int], "HttpResponse"]


# --- the bench database -----------------------------------------------------------------


def _admin_url(url: str) -> tuple[str, str]:
    """(URL of the server's maintenance database, name of the bench database)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit(f"--database-url must be a PostgreSQL URL, got {parts.scheme!r}.")
    name = parts.path.lstrip("/")
    if "bench" not in name:
        # This script drops the database it is given: refuse anything not obviously ours.
        raise SystemExit(f"Refusing to drop {name!r}: a bench database name contains 'bench'.")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def _drop_and_maybe_create(url: str, *, create: bool) -> None:
    admin, name = _admin_url(url)
    database = sql.Identifier(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(database))


def recreate_database(url: str) -> None:
    _drop_and_maybe_create(url, create=True)


def drop_database(url: str) -> None:
    from django.db import connections

    connections.close_all()
    _drop_and_maybe_create(url, create=False)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The bench holds half of one tutor's calendar; the share limit is still checked.
    os.environ.setdefault("BOOKING_MAX_HELD_SHARE", "1")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.urls import get_resolver

    if settings.DEBUG:
        raise SystemExit("settings.DEBUG is on: queries would be logged and timings skewed.")
    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql"):
        raise SystemExit(f"DATABASE_URL did not select PostgreSQL (engine {engine}).")
    settings.ROOT_URLCONF = "bench.floor_urls"
    try:  # fail before seeding, with one line rather than a traceback per request
        get_resolver().url_patterns  # noqa: B018 - imports config.urls and everything it names
    except ImportError as exc:
        raise SystemExit(f"The URLconf does not import ({exc}): fix the app first.") from exc
    call_command("migrate", interactive=False, verbosity=0)


# --- seeding ------------------------------------------------------------------------------


@dataclass
class Dataset:
    tutor: Tutor
    now: datetime
    window_first: date  # local dates, as the API takes them
    window_last: date
    window_start: datetime  # the same window in UTC, as the slot list computes it
    window_end: datetime
    hold_pool: list[int] = field(default_factory=list)


def _local(day: date, at: clock, zone: Any) -> datetime:
    return datetime.combine(day, at, zone).astimezone(UTC)


def _seed_tutor(now: datetime) -> tuple[Tutor, Offering, Offering, list[AvailabilityRule]]:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from bookings import services
    from bookings.models import Tutor
    from tests.conftest import add_offerings

    with transaction.atomic():
        user = get_user_model().objects.create_user(username="bench-tutor", password=None)
        tutor = Tutor.objects.create(
            user=user,
            slug="ada-bench",
            display_name="Ada Bench",
            headline="Python tutoring",
            email="ada-bench@example.com",
            timezone=ZONE_NAME,
        )
        # The tests' remote ($90) and NYC ($120) hour-long offerings.
        remote, in_person = add_offerings(tutor)
    # Through the service, as a tutor would: each save materialises the 8-week horizon.
    rules = [
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[1, 2, 3, 4, 5],
            start_time=clock(10, 0),
            end_time=clock(21, 0),
            offerings=[remote, in_person],
        ),
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[6],
            start_time=clock(10, 0),
            end_time=clock(13, 0),
            offerings=[remote, in_person],
        ),
    ]
    return tutor, remote, in_person, rules


def _seed_past_slots(
    tutor: Tutor,
    remote: Offering,
    in_person: Offering,
    rules: Sequence[AvailabilityRule],
    now: datetime,
    rng: random.Random,
) -> list[Slot]:
    """Five years of rule slots, plus a one-off slot every other Sunday; all ended."""
    from bookings.availability import rule_candidates
    from bookings.models import Slot, SlotRemoval, SlotSource

    zone = tutor.zone
    today = now.astimezone(zone).date()
    first = today - timedelta(days=HISTORY_DAYS)
    slots: list[Slot] = []

    def add(start: datetime, end: datetime, source: str, rule: AvailabilityRule | None) -> None:
        deleted = rng.random() < 0.02
        slots.append(
            Slot(
                tutor=tutor,
                start=start,
                end=end,
                source=source,
                rule=rule,
                remote_offering=remote,
                in_person_offering=in_person,
                removed_at=start - timedelta(days=2) if deleted else None,
                removed_reason=SlotRemoval.DELETED if deleted else "",
            )
        )

    for rule in rules:
        for start, end in rule_candidates(
            weekdays=rule.weekdays,
            start_time=rule.start_time,
            end_time=rule.end_time,
            duration=remote.duration,
            zone=zone,
            first_day=first,
            last_day=today,
        ):
            if end <= now:  # later ones belong to the horizon slots_materialise made
                add(start, end, SlotSource.RULE, rule)
    day = first + timedelta(days=(7 - first.isoweekday()) % 7)  # the first Sunday
    while day < today:
        start = _local(day, clock(15, 0), zone)
        add(start, start + remote.duration, SlotSource.ONE_OFF, None)
        day += timedelta(days=14)
    return Slot.objects.bulk_create(slots, batch_size=2_000)


@dataclass
class _History:
    bookings: list[Booking] = field(default_factory=list)
    created: list[datetime] = field(default_factory=list)
    updated: list[datetime] = field(default_factory=list)
    events: list[BookingEvent] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)


def _add_booking(
    history: _History,
    slot: Slot,
    status: str,
    *,
    rng: random.Random,
    now: datetime,
    student: int,
    offerings: dict[str, Offering],
) -> None:
    """One booking in `status`, with the event log and payment its life would have left."""
    from bookings.models import Actor, Booking, BookingEvent, BookingStatus, Mode
    from payments.models import Payment, PaymentStatus, Provider

    mode = Mode.REMOTE if rng.random() < 0.65 else Mode.IN_PERSON
    offering = offerings[mode]
    created = min(slot.start - timedelta(hours=rng.randint(13, 24 * 21)), now)
    booking = Booking(
        tutor_id=slot.tutor_id,
        slot=slot,
        offering=offering,
        mode=mode,
        student_name=f"Student {student}",
        student_email=f"student{student}@example.com",
        student_timezone=rng.choice([ZONE_NAME, "America/Chicago", "Europe/London", ""]),
        notes=rng.choice(["", "Decorators, please", "Interview prep", "pandas basics"]),
        price_amount=offering.price_amount,
        currency=offering.currency,
        status=status,
    )
    events: list[BookingEvent] = []

    def event(src: str, dst: str, actor: str, reason: str, at: datetime, **data: Any) -> None:
        events.append(
            BookingEvent(
                booking=booking,
                from_status=src,
                to_status=dst,
                actor=actor,
                reason=reason,
                data=data,
                at=at,
            )
        )

    pending, confirmed = BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED
    event("", pending, Actor.STUDENT, "held", created)
    paid_at: datetime | None = None
    last = created
    if status == pending:
        booking.hold_expires_at = now + timedelta(minutes=25)
    elif status == BookingStatus.EXPIRED:
        last = booking.hold_expires_at = created + timedelta(minutes=30)
        event(pending, status, Actor.SYSTEM, "hold_expired", last)
    elif status == BookingStatus.CANCELLED and rng.random() < 0.4:  # gave up before paying
        booking.hold_expires_at = created + timedelta(minutes=30)
        last = booking.cancelled_at = created + timedelta(minutes=rng.randint(1, 25))
        event(pending, status, Actor.STUDENT, "cancelled by student", last)
    else:  # it was paid for
        paid_at = booking.confirmed_at = last = created + timedelta(minutes=rng.randint(2, 20))
        event(pending, confirmed, Actor.PAYMENT, "paid", last)
        if status == BookingStatus.CANCELLED:
            window = max((slot.start - last).total_seconds(), 60)
            last = booking.cancelled_at = last + timedelta(seconds=rng.uniform(30, window))
            full = last <= slot.start - timedelta(hours=24)
            booking.refund_amount = booking.price_amount if full else 0
            booking.sequence = 1
            refund = {"refund_amount": booking.refund_amount, "currency": booking.currency}
            event(confirmed, status, Actor.STUDENT, "cancelled by student", last, **refund)
        elif status in (BookingStatus.COMPLETED, BookingStatus.NO_SHOW):
            last = slot.end + timedelta(hours=rng.randint(1, 30))
            event(confirmed, status, Actor.TUTOR, f"marked {status}", last)
    history.bookings.append(booking)
    history.created.append(created)
    history.updated.append(last)
    history.events.extend(events)
    if status == BookingStatus.PENDING_PAYMENT:
        return  # its open checkout is what the hold under test creates for itself
    session = uuid.uuid4().hex
    history.payments.append(
        Payment(
            booking=booking,
            provider=Provider.STRIPE,
            amount=booking.price_amount,
            currency=booking.currency,
            status=PaymentStatus.PAID if paid_at else PaymentStatus.EXPIRED,
            checkout_session_id=f"cs_test_{session}",
            checkout_url=f"https://checkout.stripe.com/c/pay/cs_test_{session}",
            payment_intent_id=f"pi_{session[:24]}" if paid_at else "",
            refunded_amount=booking.refund_amount,
            paid_at=paid_at,
        )
    )


def _save_history(history: _History) -> None:
    from django.db import connection, transaction

    from bookings.models import Booking, BookingEvent
    from payments.models import Payment

    with transaction.atomic():
        Booking.objects.bulk_create(history.bookings, batch_size=1_000)
        BookingEvent.objects.bulk_create(history.events, batch_size=2_000)
        Payment.objects.bulk_create(history.payments, batch_size=1_000)
        # auto_now_add stamped every row "now": give each booking its historical times.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE bookings_booking AS b SET created_at = v.created, updated_at = v.updated"
                " FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[])"
                " AS v(id, created, updated) WHERE b.id = v.id",
                [[b.pk for b in history.bookings], history.created, history.updated],
            )
            cursor.execute(
                "UPDATE bookings_slot SET created_at = \"start\" - interval '8 weeks'"
                ' WHERE "start" < %s',
                [min(history.created, default=datetime.now(UTC))],
            )


def seed(*, seed: int, pool_size: int) -> Dataset:
    from django.db import connection
    from django.utils import timezone

    from bookings import selectors
    from bookings.models import BookingStatus, Slot

    rng = random.Random(seed)
    now = timezone.now()
    tutor, remote, in_person, rules = _seed_tutor(now)
    offerings = {remote.mode: remote, in_person.mode: in_person}
    past = [s for s in _seed_past_slots(tutor, remote, in_person, rules, now, rng) if s.is_active]

    zone = tutor.zone
    today = now.astimezone(zone).date()
    first, last = today + timedelta(days=1), today + timedelta(days=1 + WINDOW_DAYS)
    data = Dataset(
        tutor=tutor,
        now=now,
        window_first=first,
        window_last=last,
        window_start=_local(first, clock(), zone),
        window_end=_local(last + timedelta(days=1), clock(), zone),
    )

    history = _History()
    statuses = [
        BookingStatus.COMPLETED,
        BookingStatus.CANCELLED,
        BookingStatus.EXPIRED,
        BookingStatus.NO_SHOW,
    ]
    for slot in rng.sample(past, k=min(PAST_BOOKINGS, len(past))):
        status = rng.choices(statuses, weights=[72, 14, 9, 5])[0]
        student = rng.randrange(900)
        _add_booking(history, slot, status, rng=rng, now=now, student=student, offerings=offerings)
    # Up to the end of the measured window, some slots are taken already (a few only held):
    # the slot list has real bookings and travel buffers to work through.
    upcoming = Slot.objects.filter(tutor=tutor, start__gt=now, start__lt=data.window_end)
    for slot in upcoming:
        if rng.random() < FUTURE_BOOKED_SHARE:
            held = rng.random() < 0.1
            status = BookingStatus.PENDING_PAYMENT if held else BookingStatus.CONFIRMED
            student = 1_000 + len(history.bookings)  # fresh emails: no hold limit trouble
            _add_booking(
                history, slot, status, rng=rng, now=now, student=student, offerings=offerings
            )
    _save_history(history)

    # Holds go after the measured window, so they never change the slot list's answer.
    def pool() -> list[int]:
        far = data.window_end + timedelta(days=365)
        open_ = selectors.open_slots(
            start=data.window_end, end=far, now=now, tutor=tutor, mode="remote"
        )
        return [item.slot.pk for item in open_]

    data.hold_pool = pool()
    if len(data.hold_pool) < pool_size:
        _extend_horizon(tutor, remote, in_person, pool_size - len(data.hold_pool))
        data.hold_pool = pool()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return data


def _extend_horizon(tutor: Tutor, remote: Offering, in_person: Offering, missing: int) -> None:
    """One-off slots after the rules' horizon (08:00–20:00 daily) until the pool is big enough."""
    from bookings.models import Slot, SlotSource

    zone = tutor.zone
    last = Slot.objects.filter(tutor=tutor).order_by("-end").values_list("end", flat=True).first()
    day = (last or datetime.now(UTC)).astimezone(zone).date() + timedelta(days=1)
    new: list[Slot] = []
    while len(new) < missing:
        for hour in range(8, 20):
            start = _local(day, clock(hour, 0), zone)
            new.append(
                Slot(
                    tutor=tutor,
                    start=start,
                    end=start + remote.duration,
                    source=SlotSource.ONE_OFF,
                    remote_offering=remote,
                    in_person_offering=in_person,
                )
            )
        day += timedelta(days=1)
    Slot.objects.bulk_create(new)


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    samples_ms: list[float] = field(default_factory=list)

    def _cut(self, pct: int) -> float:
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[pct - 1]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        return self._cut(90)

    @property
    def p99(self) -> float:
        return self._cut(99)


def _expect(response: HttpResponseBase, status: int, what: str) -> HttpResponse:
    """The response, if it is a plain HttpResponse with the expected status; else stop."""
    from django.http import HttpResponse

    if not isinstance(response, HttpResponse) or response.status_code != status:
        body = getattr(response, "content", b"")[:500].decode(errors="replace")
        raise SystemExit(f"{what}: expected {status}, got {response.status_code}: {body}")
    return response


def measure_interleaved(
    a: Series, run_a: Sample, b: Series, run_b: Sample, *, iterations: int, warmup: int
) -> None:
    """Run a and b alternately (ab, ba, ab, …); record iterations after warmup rounds."""
    gc.collect()
    for i in range(warmup + iterations):
        pair = ((a, run_a), (b, run_b)) if i % 2 == 0 else ((b, run_b), (a, run_a))
        for series, run in pair:
            started = time.perf_counter_ns()
            run(i)
            elapsed = (time.perf_counter_ns() - started) / 1e6
            if i >= warmup:
                series.samples_ms.append(elapsed)


@dataclass(frozen=True)
class Endpoints:
    slots: Sample
    slots_repeated: Sample
    slots_floor: Sample
    page: Sample
    page_repeated: Sample
    hold: Sample
    insert_floor: Sample


def endpoints(client: Client, data: Dataset) -> Endpoints:
    slot_query = {
        "tutor": data.tutor.slug,
        "start": data.window_first.isoformat(),
        "end": data.window_last.isoformat(),
        "tz": ZONE_NAME,
    }
    floor_query = {
        "tutor_id": str(data.tutor.pk),
        "start": max(data.window_start, data.now).isoformat(),
        "end": data.window_end.isoformat(),
    }
    pool = iter(data.hold_pool)

    def body(i: int, slot_id: int) -> dict[str, Any]:
        return {
            "slot": slot_id,
            "mode": "remote",
            "student_name": f"Bench Student {i}",
            "student_email": f"bench.student{i}.{slot_id}@example.com",
            "notes": "Decorators, please",
            "student_timezone": "Europe/Berlin",
        }

    def slots(i: int) -> HttpResponse:
        return _expect(client.get("/api/slots/", slot_query), 200, "GET /api/slots/")

    etag: dict[str, str] = {}

    def slots_repeated(i: int) -> HttpResponse:
        """The same query again from a client holding the answer: 304, no slot query."""
        if "tag" not in etag:
            etag["tag"] = slots(i)["ETag"]
        response = client.get("/api/slots/", slot_query, HTTP_IF_NONE_MATCH=etag["tag"])
        return _expect(response, 304, "GET /api/slots/ with If-None-Match")

    def slots_floor(i: int) -> HttpResponse:
        return _expect(client.get("/bench/floor/slots/", floor_query), 200, "slots floor")

    page_url = f"/t/{data.tutor.slug}/"

    def page(i: int) -> HttpResponse:
        return _expect(client.get(page_url), 200, f"GET {page_url}")

    def page_repeated(i: int) -> HttpResponse:
        """An anonymous visitor reloading the tutor's page: 304, no slot query.

        The page lists slots from now, so its tag also ends when the first listed slot
        closes (its start minus the notice): should that moment pass during the run, the
        200 it answers gives the next tag (that sample then counts a full page)."""
        if "page" not in etag:
            etag["page"] = page(i)["ETag"]
        response = client.get(page_url, HTTP_IF_NONE_MATCH=etag["page"])
        if response.status_code == 200:
            etag["page"] = response["ETag"]
            return _expect(response, 200, f"GET {page_url}")
        return _expect(response, 304, f"GET {page_url} with If-None-Match")

    def hold(i: int) -> HttpResponse:
        try:
            slot_id = next(pool)
        except StopIteration:
            raise SystemExit("The hold pool ran dry: fewer open slots than holds.") from None
        response = client.post(
            "/api/bookings/",
            body(i, slot_id),
            content_type="application/json",
            # Each student from their own network: the per-client hold limit is counted
            # (in the same query) but never reached.
            REMOTE_ADDR=f"2001:db8:{i:x}::1",
        )
        return _expect(response, 201, f"POST /api/bookings/ (slot {slot_id})")

    def insert_floor(i: int) -> HttpResponse:
        payload = body(i, data.hold_pool[0])
        response = client.post("/bench/floor/insert/", payload, content_type="application/json")
        return _expect(response, 201, "insert floor")

    return Endpoints(slots, slots_repeated, slots_floor, page, page_repeated, hold, insert_floor)


@dataclass(frozen=True)
class QueryCount:
    statements: int  # SELECT / INSERT / UPDATE / DELETE
    transaction: int  # BEGIN, COMMIT, SAVEPOINT, RELEASE, ROLLBACK
    sql: list[str]


def count_queries(run: Sample) -> QueryCount:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run(0)
    sqls = [q["sql"] for q in captured.captured_queries]
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    tx = sum(1 for s in sqls if s.lstrip().upper().startswith(control))
    return QueryCount(len(sqls) - tx, tx, sqls)


def profile(run: Sample, count: int, out: io.StringIO) -> None:
    prof = cProfile.Profile()
    for i in range(count):
        prof.enable()
        run(10_000 + i)
        prof.disable()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(30)


def add_report_args(parser: argparse.ArgumentParser) -> None:
    """The options print_queries and print_profiles answer to."""
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile N more requests of each"
    )
    parser.add_argument("--show-sql", action="store_true", help="print the captured SQL")


def print_queries(counts: Sequence[tuple[str, QueryCount]], *, width: int, show_sql: bool) -> None:
    """Each request's statements and transaction control (with show_sql, the SQL)."""
    for label, qc in counts:
        print(
            f"  {label:<{width}} {qc.statements:3d} statements + {qc.transaction} "
            "transaction control"
        )
    print("  (not captured: the CONN_HEALTH_CHECKS 'SELECT 1' each request starts with)\n")
    if show_sql:
        for label, qc in counts:
            print(f"-- {label}")
            for statement in qc.sql:
                print(f"   {statement[:300]}")
        print()


def print_profiles(runs: Iterable[tuple[str, Sample]], count: int) -> None:
    """cProfile `count` more requests of each run (nothing when count is 0)."""
    if not count:
        return
    for label, run_one in runs:
        out = io.StringIO()
        profile(run_one, count, out)
        print(f"cProfile of {count} × {label}\n{out.getvalue()}")


# --- report ---------------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    import django
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0]
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count() or 0
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    db = settings.DATABASES["default"]
    options = db.get("OPTIONS", {})
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        ("nproc", str(nproc)),
        ("cpu", cpu),
        ("load average", f"{load} (1, 5, 15 min; other work on the box skews p99)"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("django", django.get_version()),
        ("postgresql", pg),
        (
            "settings",
            f"{SETTINGS_MODULE}, DEBUG={settings.DEBUG}, CONN_MAX_AGE={db.get('CONN_MAX_AGE')}, "
            f"CONN_HEALTH_CHECKS={db.get('CONN_HEALTH_CHECKS')}",
        ),
        (
            "db options",
            f"server_side_binding={options.get('server_side_binding', False)}, "
            f"prepare_threshold={options.get('prepare_threshold')} "
            "(prepared statements, DATABASE_PREPARED_STATEMENTS)",
        ),
    ]


def dataset_summary(data: Dataset) -> list[tuple[str, str]]:
    from django.db.models import Count

    from bookings.models import Booking, BookingEvent, Slot
    from payments.models import Payment

    slots = Slot.objects.filter(tutor=data.tutor)
    by_status = dict(
        Booking.objects.filter(slot__start__lt=data.now)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return [
        ("slots", f"{slots.count():,} ({slots.filter(start__gt=data.now).count():,} future)"),
        ("past bookings", f"{sum(by_status.values()):,} " + json.dumps(by_status)),
        ("future bookings", f"{Booking.objects.filter(slot__start__gt=data.now).count():,}"),
        ("events, payments", f"{BookingEvent.objects.count():,}, {Payment.objects.count():,}"),
        (
            "slot window",
            f"{data.window_first} .. {data.window_last} ({ZONE_NAME}), tutor {data.tutor.slug}",
        ),
        ("hold pool", f"{len(data.hold_pool)} open remote slots after the window"),
    ]


def print_pairs(title: str, pairs: Iterable[tuple[str, str]]) -> None:
    print(title)
    for key, value in pairs:
        print(f"  {key:<18} {value}")
    print()


def print_results(rows: Sequence[tuple[str, str, Series, Series]]) -> bool:
    header = (
        f"{'endpoint':<34} {'median':>8} {'p90':>8} {'p99':>8} {'floor med':>10} "
        f"{'floor p99':>10} {'ratio':>7} {'target':>7}  verdict"
    )
    print("Latency, ms (n after warm-up; endpoint and floor interleaved)")
    print(header)
    print("-" * len(header))
    ok = True
    for key, label, app, floor in rows:
        ratio = app.median / floor.median
        target = TARGETS[key]
        passed = ratio <= target
        ok &= passed
        print(
            f"{label:<34} {app.median:8.2f} {app.p90:8.2f} {app.p99:8.2f} {floor.median:10.2f} "
            f"{floor.p99:10.2f} {ratio:6.2f}x {target:6.1f}x  {'PASS' if passed else 'FAIL'}"
        )
    print()
    print("Floors alone")
    for _, _, _, floor in rows:
        print(
            f"  {floor.name:<32} median {floor.median:6.2f}  p90 {floor.p90:6.2f}  "
            f"p99 {floor.p99:6.2f}  (n={len(floor.samples_ms)})"
        )
    print()
    return ok


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the bench database behind")
    parser.add_argument("--slots-iterations", type=int, default=300)
    parser.add_argument("--holds-iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds before each")
    parser.add_argument("--seed", type=int, default=20261202, help="random seed of the data")
    add_report_args(parser)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    recreate_database(args.database_url)
    try:
        setup_django(args.database_url)
        return run(args)
    finally:
        if args.keep:
            print(f"Kept the bench database: {args.database_url}")
        else:
            drop_database(args.database_url)


def run(args: argparse.Namespace) -> int:
    from django.test import Client

    started = time.perf_counter()
    pool_size = args.warmup + args.holds_iterations + 1 + args.profile
    data = seed(seed=args.seed, pool_size=pool_size)
    seeded = time.perf_counter() - started
    print_pairs("Machine", machine())
    print_pairs(f"Data (seeded in {seeded:.1f} s)", dataset_summary(data))

    client = Client()
    ep = endpoints(client, data)
    first = json.loads(ep.slots(0).content)
    floor_first = json.loads(ep.slots_floor(0).content)
    if not first["count"]:
        raise SystemExit("The slot window has no open slots: nothing to measure.")
    print(
        f"Slot list answers {first['count']} open slots "
        f"({len(ep.slots(0).content):,} bytes); the floor returns {floor_first['count']} rows "
        f"({len(ep.slots_floor(0).content):,} bytes).\n"
    )

    slots, slots_floor = Series("GET /api/slots/"), Series("slots floor (1 query)")
    repeated, repeated_floor = Series("GET /api/slots/ (304)"), Series("slots floor, again")
    page_again, page_floor = Series("GET /t/<slug>/ (304)"), Series("slots floor, page")
    hold, insert_floor = Series("POST /api/bookings/"), Series("insert floor (1 INSERT)")
    measure_interleaved(
        slots, ep.slots, slots_floor, ep.slots_floor,
        iterations=args.slots_iterations, warmup=args.warmup,
    )  # fmt: skip
    # Before the holds: each one raises the tutor's version, which ends the ETag.
    measure_interleaved(
        repeated, ep.slots_repeated, repeated_floor, ep.slots_floor,
        iterations=args.slots_iterations, warmup=args.warmup,
    )  # fmt: skip
    measure_interleaved(
        page_again, ep.page_repeated, page_floor, ep.slots_floor,
        iterations=args.slots_iterations, warmup=args.warmup,
    )  # fmt: skip
    repeated_count = count_queries(ep.slots_repeated)
    page_counts = (count_queries(ep.page), count_queries(ep.page_repeated))
    measure_interleaved(
        hold, ep.hold, insert_floor, ep.insert_floor,
        iterations=args.holds_iterations, warmup=args.warmup,
    )  # fmt: skip

    ok = print_results(
        [
            ("slots", "GET /api/slots/ (4 weeks, tz)", slots, slots_floor),
            ("slots_304", "slot list, repeated (304)", repeated, repeated_floor),
            ("page_304", "tutor page, repeated (304)", page_again, page_floor),
            ("hold", "POST /api/bookings/ (hold)", hold, insert_floor),
        ]
    )

    print("Queries per request (CaptureQueriesContext, one extra request each)")
    counts = [
        ("GET /api/slots/", count_queries(ep.slots)),
        ("GET /api/slots/ (304)", repeated_count),
        ("GET /t/<slug>/", page_counts[0]),
        ("GET /t/<slug>/ (304)", page_counts[1]),
        ("slots floor", count_queries(ep.slots_floor)),
        ("POST /api/bookings/", count_queries(ep.hold)),
        ("insert floor", count_queries(ep.insert_floor)),
    ]
    print_queries(counts, width=22, show_sql=args.show_sql)
    print_profiles((("GET /api/slots/", ep.slots), ("POST /api/bookings/", ep.hold)), args.profile)

    print("Overall:", "PASS" if ok else "FAIL")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
