"""Load benchmark of the whole stack on loopback: gunicorn, Celery, PostgreSQL, Redis.

    .venv/bin/python bench/load.py [--duration 60] [--clients 32] [--web N] [--workers N] [--keep]

What it does:

1. Creates a fresh PostgreSQL database (its name must contain "bench"), migrates it and
   seeds bench/core.py's tutor (remote + in-person offerings, weekday and Saturday rules)
   over a 52-week horizon, through bookings.services.rule_save.
2. Starts, all on 127.0.0.1: an SMTP sink and the fake Stripe (bench/sidecars.py, each
   its own process), gunicorn `config.wsgi:application` (4 sync workers) with
   bench.settings_load (config.settings.local, DEBUG off, real SMTP, the Stripe client
   pointed at the fake, Redis db 11 as the broker) and one Celery worker
   (`--concurrency=2`). Scaled out: `--web N` starts N such gunicorn instances (each
   its own port; the clients spread their requests over them round-robin) and
   `--workers N` N Celery workers, all on the same PostgreSQL and Redis; every check
   below must hold the same (nothing may live in one process's memory).
3. Race: N (200) concurrent POST /api/bookings/ on one slot, distinct emails: exactly one
   201, the rest 409, no 5xx.
4. Mixed workload, --clients students in a closed loop for --duration seconds of app
   traffic: GET /api/tutors/, GET /api/slots/ (a four-week window, a student's tz),
   POST /api/bookings/ (hold, a Checkout Session at the fake), a signed
   checkout.session.completed webhook for that session (the fake marks it paid first),
   GET /api/bookings/{token}/, POST /api/bookings/{token}/cancel/ (refund at the fake).
   Interleaved with it, in slices (--slice seconds of app traffic, then half as long of
   floor traffic, alternating which goes first), the same students run the same journey
   against the floors of bench/floor_urls.py served by the same gunicorn: every read
   becomes the slot list's one indexed query returned by JsonResponse, every write one
   ORM insert in a transaction. Both phases see the same concurrency, machine and
   background work (the worker sending mail), so median/floor-median is the overhead
   the app adds; target: <= 4x for every endpoint.
5. Lets the worker drain the outbox (bounded; then runs the sweep itself, as beat would,
   if anything is left), and checks: no 5xx, no double booking (SQL over the active
   bookings: per slot, overlaps, in-person travel buffers), and every notification due
   by now is "sent" and reached the sink exactly once (matched by Message-ID).
6. Tears everything down, also on failure or Ctrl-C: processes ended, database dropped,
   the Redis bench db flushed. Exit status 0 only if every check and target passes.

Latency is measured by the client (what a student waits, queueing included) and, from
gunicorn's access log, inside the worker (%(D)s: parse to response, no queueing); both
tables are printed, the verdict uses the client side. Request loops stop at their
deadline or after --max-requests, whichever comes first; each request times out at 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import say

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tutoring_load_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
REDIS_MARK = "tutoring-load-bench"
TARGET = 4.0
WINDOW_DAYS = 27  # end = start + 27 days, inclusive: four whole weeks
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo", "UTC"]

ENDPOINTS = {  # key: (label, floor kind)
    "slots": ("GET /api/slots/ (4 weeks, tz)", "read"),
    "tutors": ("GET /api/tutors/", "read"),
    "booking": ("GET /api/bookings/{token}/", "read"),
    "hold": ("POST /api/bookings/ (hold)", "write"),
    "webhook": ("POST /payments/stripe/webhook/", "write"),
    "cancel": ("POST /api/bookings/{token}/cancel/", "write"),
}
FLOORS = {
    "read": "read floor: 1 indexed slot query",
    "write": "write floor: 1 INSERT in a transaction",
}


# --- measuring ------------------------------------------------------------------------------


def pct(samples: Sequence[float], p: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else math.nan
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


@dataclass
class Series:
    ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)  # the first few, for the report
    bad: int = 0  # answers that were not one of the expected statuses

    @property
    def p50(self) -> float:
        return statistics.median(self.ms) if self.ms else math.nan

    @property
    def p99(self) -> float:
        return pct(self.ms, 99)


@dataclass
class Recorder:
    budget: int
    sent: int = 0
    series: dict[tuple[str, str], Series] = field(default_factory=lambda: defaultdict(Series))
    active: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # seconds
    outcomes: Counter[str] = field(default_factory=Counter)  # webhook answers

    def take(self) -> bool:
        if self.sent >= self.budget:
            return False
        self.sent += 1
        return True

    def add(self, phase: str, key: str, status: int, ms: float, ok: bool, note: str) -> None:
        s = self.series[(phase, key)]
        s.statuses[status] += 1
        if status:  # a timeout or connection error has no latency worth keeping
            s.ms.append(ms)
        if not ok:
            s.bad += 1
            if len(s.unexpected) < 5:
                s.unexpected.append(f"{status} {note[:300]}")

    def status_total(self, predicate: Callable[[int], bool]) -> int:
        return sum(n for s in self.series.values() for st, n in s.statuses.items() if predicate(st))


@dataclass
class Window:
    """A four-week window as a student in `zone` asks for it, and in UTC for the floor."""

    zone: str
    first: date
    last: date

    @property
    def query(self) -> dict[str, str]:
        return {"start": self.first.isoformat(), "end": self.last.isoformat(), "tz": self.zone}

    def floor_query(self, tutor_id: int, now: datetime) -> dict[str, str]:
        zone = ZoneInfo(self.zone)
        start = datetime.combine(self.first, clock(), zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), clock(), zone).astimezone(UTC)
        return {
            "tutor_id": str(tutor_id),
            "start": max(start, now).isoformat(),
            "end": end.isoformat(),
        }


@dataclass
class World:
    bases: list[str]  # the gunicorn instances, used in turn
    stripe_control: str
    webhook_secret: str
    tutor_slug: str
    tutor_id: int
    horizon_days: int
    rec: Recorder
    http: aiohttp.ClientSession
    sample_event: bytes = b""
    emails: int = 0
    journeys: int = 0
    requests_sent: int = 0

    def base(self) -> str:
        """The next gunicorn instance, round-robin (one request each)."""
        self.requests_sent += 1
        return self.bases[self.requests_sent % len(self.bases)]

    def window(self, rng: random.Random) -> Window:
        zone = rng.choice(ZONES)
        today = datetime.now(ZoneInfo(zone)).date()
        first = today + timedelta(days=rng.randint(1, max(1, self.horizon_days - 30)))
        return Window(zone, first, first + timedelta(days=WINDOW_DAYS))

    def next_email(self, client: int) -> str:
        self.emails += 1
        return f"student{self.emails}.c{client}@example.com"

    def next_ip(self) -> str:
        """Each journey is another student, so another address (a header value only)."""
        self.journeys += 1
        return harness.student_ip(self.journeys)

    async def request(
        self,
        phase: str,
        key: str,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...],
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        ip: str = "127.0.0.1",
    ) -> tuple[int, bytes]:
        hdrs = {"X-Bench-Phase": phase, "X-Bench-Label": key, **(headers or {})}
        hdrs.setdefault("X-Forwarded-For", ip)
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        started = time.perf_counter()
        status, content, note = 0, b"", ""
        try:
            async with self.http.request(
                method, self.base() + path, params=params, data=body, headers=hdrs
            ) as response:
                content = await response.read()
                status = response.status
                note = content[:300].decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            note = f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        self.rec.add(phase, key, status, ms, status in expect, f"{method} {path}: {note}")
        return status, content


# --- the students -------------------------------------------------------------------------------

Step = Callable[[], Awaitable[None]]


class Student:
    """One closed-loop client. A journey is a queue of steps; a slice that ends mid-journey
    leaves the rest for the next slice of the same phase."""

    def __init__(self, n: int, world: World, seed: int) -> None:
        self.n = n
        self.w = world
        self.rng = random.Random(seed)
        self.steps: dict[str, deque[Step]] = {"app": deque(), "floor": deque()}
        self.open: list[dict[str, Any]] = []
        self.window: Window | None = None
        self.ip = "127.0.0.1"

    async def call(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        return await self.w.request(*args, ip=self.ip, **kwargs)

    async def run(self, phase: str, deadline: float, record_as: str) -> None:
        queue = self.steps[phase]
        while time.monotonic() < deadline:
            if not queue:
                (self.plan_app if phase == "app" else self.plan_floor)(queue, record_as)
            if not self.w.rec.take():
                return
            await queue.popleft()()

    # The journey: p 0.5 look at the tutors, browse 1-2 windows, hold a slot, read the
    # booking; then 12 % walk away, 8 % cancel the hold, 80 % pay (webhook), read it
    # again, and a quarter of those cancel later.
    def _shape(self) -> tuple[bool, int, str, bool]:
        r = self.rng.random()
        fate = "abandon" if r < 0.12 else "cancel_hold" if r < 0.20 else "pay"
        return (
            self.rng.random() < 0.5,
            1 + (self.rng.random() < 0.3),
            fate,
            self.rng.random() < 0.25,
        )

    def plan_app(self, q: deque[Step], phase: str) -> None:
        self.ip = self.w.next_ip()
        tutors, browses, fate, cancel_later = self._shape()
        if tutors:
            q.append(lambda: self.tutors(phase))
        for _ in range(browses):
            q.append(lambda: self.browse(phase))
        q.append(lambda: self.hold(phase, q, fate, cancel_later, retry=True))

    async def tutors(self, phase: str) -> None:
        await self.call(phase, "tutors", "GET", "/api/tutors/", expect=(200,))

    async def browse(self, phase: str) -> None:
        self.window = self.w.window(self.rng)
        params = {"tutor": self.w.tutor_slug, **self.window.query}
        status, body = await self.call(
            phase, "slots", "GET", "/api/slots/", params=params, expect=(200,)
        )
        self.open = json.loads(body)["results"] if status == 200 else []

    async def hold(
        self, phase: str, q: deque[Step], fate: str, cancel_later: bool, *, retry: bool
    ) -> None:
        if not self.open:
            return  # nothing open in the window: the student leaves
        slot = self.open.pop(self.rng.randrange(len(self.open)))
        modes = slot["modes"]
        mode = "remote" if "remote" in modes and self.rng.random() < 0.75 else modes[-1]
        body = {
            "slot": slot["id"],
            "mode": mode,
            "student_name": f"Student {self.n}",
            "student_email": self.w.next_email(self.n),
            "notes": "Decorators, please",
            "student_timezone": self.window.zone if self.window else "UTC",
        }
        status, content = await self.call(
            phase, "hold", "POST", "/api/bookings/", body=json.dumps(body).encode(),
            expect=(201, 409),
        )  # fmt: skip
        if status == 409 and retry:  # taken a moment ago: pick another one
            q.appendleft(lambda: self.hold(phase, q, fate, cancel_later, retry=False))
        if status != 201:
            return
        booking = json.loads(content)
        token = booking["manage_url"].rstrip("/").rsplit("/", 1)[-1]
        session = harness.session_id_from(booking["payment_url"])
        q.append(lambda: self.read(phase, token))
        if fate == "cancel_hold":
            q.append(lambda: self.cancel(phase, token))
        elif fate == "pay":
            q.append(lambda: self.pay(phase, session))
            q.append(lambda: self.read(phase, token))
            if cancel_later:
                q.append(lambda: self.cancel(phase, token))

    async def read(self, phase: str, token: str) -> None:
        await self.call(phase, "booking", "GET", f"/api/bookings/{token}/", expect=(200,))

    async def pay(self, phase: str, session_id: str) -> None:
        # Stripe's side first (not timed): the student paid on the Checkout page.
        async with self.w.http.post(f"{self.w.stripe_control}/complete/{session_id}") as r:
            if r.status != 200:
                self.w.rec.outcomes[f"fake stripe refused to complete: {r.status}"] += 1
                return
            session = await r.json()
        payload, signature = harness.signed_event(session, self.w.webhook_secret)
        status, content = await self.call(
            phase, "webhook", "POST", "/payments/stripe/webhook/", body=payload,
            headers={"Stripe-Signature": signature}, expect=(200,),
        )  # fmt: skip
        if status == 200:
            self.w.rec.outcomes[json.loads(content).get("outcome", "?")] += 1

    async def cancel(self, phase: str, token: str) -> None:
        await self.call(phase, "cancel", "POST", f"/api/bookings/{token}/cancel/", expect=(200,))

    # The same journey against the floors: reads → slot query, writes → one INSERT.
    def plan_floor(self, q: deque[Step], phase: str) -> None:
        self.ip = self.w.next_ip()
        tutors, browses, fate, cancel_later = self._shape()
        keys = ["tutors"] * tutors + ["slots"] * browses + ["hold", "booking"]
        if fate == "cancel_hold":
            keys.append("cancel")
        elif fate == "pay":
            keys += ["webhook", "booking"] + ["cancel"] * cancel_later
        for key in keys:
            q.append(self._floor_step(phase, key))

    def _floor_step(self, phase: str, key: str) -> Step:
        return lambda: self.floor(phase, key)

    async def floor(self, phase: str, key: str) -> None:
        if ENDPOINTS[key][1] == "read":
            window = self.w.window(self.rng)
            params = window.floor_query(self.w.tutor_id, datetime.now(UTC))
            await self.call(phase, key, "GET", "/bench/floor/slots/", params=params,
                                 expect=(200,))  # fmt: skip
            return
        if key == "hold":
            hold = {
                "slot": 1,
                "mode": "remote",
                "student_name": f"Student {self.n}",
                "student_email": self.w.next_email(self.n),
                "notes": "Decorators, please",
                "student_timezone": "UTC",
            }
            payload = json.dumps(hold).encode()
        elif key == "webhook":
            payload = self.w.sample_event
        else:
            payload = b"{}"
        await self.call(phase, key, "POST", "/bench/floor/insert/", body=payload,
                             expect=(201,))  # fmt: skip


# --- phases -----------------------------------------------------------------------------------


async def race(bases: list[str], slot_id: int, n: int) -> tuple[Counter[str], float]:
    """n students press "book" on the same slot at the same moment (spread over every
    gunicorn instance)."""
    gate = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=n + 10, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def one(i: int) -> str:
            body = {"slot": slot_id, "mode": "remote", "student_name": f"Racer {i}",
                    "student_email": f"racer{i}@example.com"}  # fmt: skip
            await gate.wait()
            try:
                headers = {"X-Bench-Phase": "race", "X-Bench-Label": "hold",
                           "X-Forwarded-For": harness.student_ip(1_000_000 + i)}  # fmt: skip
                base = bases[i % len(bases)]
                async with http.post(base + "/api/bookings/", json=body, headers=headers) as r:
                    data = await r.json(content_type=None)
                    return f"{r.status} {data.get('code', data.get('status', ''))}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                return f"error {type(exc).__name__}"

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.sleep(0.2)  # every task is waiting at the gate
        started = time.perf_counter()
        gate.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=90)
        return Counter(results), time.perf_counter() - started


async def mixed(world: World, args: argparse.Namespace) -> None:
    students = [Student(i, world, args.seed * 1000 + i) for i in range(args.clients)]

    async def slice_(phase: str, seconds: float, record_as: str) -> tuple[float, int]:
        before = world.rec.sent
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(s.run(phase, deadline, record_as) for s in students))
        elapsed = time.monotonic() - started
        return elapsed, world.rec.sent - before

    if args.warmup:
        for phase in ("app", "floor"):
            await slice_(phase, args.warmup, "warmup")
        for student in students:  # measured journeys start afresh (holds left are abandoned)
            for queue in student.steps.values():
                queue.clear()
        say(f"Warm-up: {args.warmup:g} s of each phase, not counted.")
    floor_seconds = args.slice * args.floor_share
    slices = max(1, math.ceil(args.duration / args.slice))
    app_left = args.duration
    for i in range(slices):
        app_seconds = min(args.slice, app_left)
        app_left -= app_seconds
        order = [("app", app_seconds), ("floor", floor_seconds * app_seconds / args.slice)]
        if i % 2:
            order.reverse()
        parts = []
        for phase, seconds in order:
            elapsed, count = await slice_(phase, seconds, phase)
            world.rec.active[phase] += elapsed
            parts.append(f"{phase} {elapsed:4.1f} s {count:5d} req ({count / elapsed:5.0f}/s)")
        errors = world.rec.status_total(lambda st: st >= 500 or st == 0)
        say(f"  slice {i + 1:2d}/{slices}: " + ", ".join(parts) + f"; 5xx/errors so far {errors}")
        if world.rec.sent >= world.rec.budget:
            say(f"  request budget ({world.rec.budget}) spent: stopping early.")
            break


def drain(timeout: float) -> dict[str, int]:
    """Wait for the worker to send what is due; then sweep once ourselves, as beat would."""
    from django.db import connections
    from django.utils import timezone

    from bookings import notifications

    started = time.monotonic()
    last_print = 0.0
    pending = sending = -1
    while time.monotonic() - started < timeout:
        pending, sending = harness.outbox_backlog(timezone.now())
        if time.monotonic() - last_print > 5:
            say(f"  outbox: {pending} due and pending, {sending} being sent")
            last_print = time.monotonic()
        if pending == 0 and sending == 0:
            break
        time.sleep(1)
    waited = time.monotonic() - started
    say(f"  drained in {waited:.1f} s" if pending == sending == 0 else "  not drained in time")
    swept = notifications.sweep(now=timezone.now(), budget_seconds=60)
    connections.close_all()
    return swept


def server_times(access_log: Path) -> dict[tuple[str, str], list[float]]:
    """In-worker milliseconds per (phase, key) from gunicorn's access log (%(D)s µs)."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in access_log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[3] in ("app", "floor"):
            out[(parts[3], parts[4])].append(int(parts[2]) / 1000)
    return out


# --- report -------------------------------------------------------------------------------------


def report(rec: Recorder, access_log: Path) -> bool:
    server = server_times(access_log)
    floor_client: dict[str, Series] = {kind: Series() for kind in FLOORS}
    floor_server: dict[str, list[float]] = {kind: [] for kind in FLOORS}
    for key, (_, kind) in ENDPOINTS.items():
        s = rec.series.get(("floor", key))
        if s:
            floor_client[kind].ms += s.ms
            floor_client[kind].statuses += s.statuses
        floor_server[kind] += server.get(("floor", key), [])

    app_s, floor_s = rec.active["app"], rec.active["floor"]
    say(f"\nLatency per endpoint: {app_s:.1f} s of app traffic, {floor_s:.1f} s of floor traffic")
    say("(client: what the student waits, queueing for a worker included; server: inside the")
    say(" gunicorn worker, from its access log; ratio = client median / its floor's client median)")
    head = (
        f"{'endpoint':<36} {'count':>6} {'req/s':>6} {'p50':>7} {'p99':>7} │ {'srv p50':>7} "
        f"{'srv p99':>7} │ {'floor':>5} {'ratio':>6} {'srv ratio':>9}  verdict"
    )
    say(head)
    say("─" * len(head))
    ok = True
    for key, (label, kind) in ENDPOINTS.items():
        s = rec.series.get(("app", key), Series())
        srv = server.get(("app", key), [])
        ratio = s.p50 / floor_client[kind].p50
        srv_ratio = statistics.median(srv) / statistics.median(floor_server[kind]) if srv else 0
        passed = ratio <= TARGET
        ok &= passed
        say(
            f"{label:<36} {len(s.ms):6d} {len(s.ms) / app_s:6.1f} {s.p50:7.1f} {s.p99:7.1f} │ "
            f"{statistics.median(srv) if srv else math.nan:7.1f} {pct(srv, 99):7.1f} │ "
            f"{kind:>5} {ratio:5.2f}x {srv_ratio:8.2f}x  {'PASS' if passed else 'FAIL'}"
        )
    say("─" * len(head))
    for kind, label in FLOORS.items():
        s = floor_client[kind]
        srv = floor_server[kind]
        say(
            f"{label:<36} {len(s.ms):6d} {len(s.ms) / floor_s:6.1f} {s.p50:7.1f} {s.p99:7.1f} │ "
            f"{statistics.median(srv) if srv else math.nan:7.1f} {pct(srv, 99):7.1f} │"
        )
    total_app = sum(len(rec.series[("app", k)].ms) for k in ENDPOINTS if ("app", k) in rec.series)
    total_floor = sum(len(s.ms) for s in floor_client.values())
    say(
        f"{'all app requests':<36} {total_app:6d} {total_app / app_s:6.1f}   "
        f"(floors: {total_floor} requests, {total_floor / floor_s:.1f}/s)"
    )
    say(f"Target: every endpoint's client median <= {TARGET:g}x its floor's.\n")

    say("Status codes (app phase):")
    for key, (label, _) in ENDPOINTS.items():
        s = rec.series.get(("app", key), Series())
        codes = ", ".join(f"{st or 'error'} × {n}" for st, n in sorted(s.statuses.items()))
        say(f"  {label:<36} {codes}")
        for line in s.unexpected:
            say(f"      unexpected: {line}")
    for key in ENDPOINTS:
        s = rec.series.get(("floor", key), Series())
        for line in s.unexpected:
            say(f"  floor {key} unexpected: {line}")
    say(f"  webhook outcomes: {dict(rec.outcomes)}")
    return ok


def payments_match(stats: dict[str, Any]) -> str:
    """Our payment and refund rows against Stripe's side (the fake's own records)."""
    from django.db.models import Count, Q

    from bookings.models import Booking
    from payments.models import Payment, PaymentStatus, Refund, RefundStatus

    paid = Payment.objects.filter(status=PaymentStatus.PAID).count()
    refunded = Refund.objects.filter(status=RefundStatus.SUCCEEDED).count()
    owed = Booking.objects.filter(refund_amount__gt=0).count()
    unpaid_active = (
        Booking.objects.filter(status="confirmed")
        .annotate(paid=Count("payments", filter=Q(payments__status=PaymentStatus.PAID)))
        .filter(paid=0)
        .count()
    )
    problems = []
    complete = stats["sessions"].get("complete", 0)
    if paid != complete:
        problems.append(f"{paid} paid payments, {complete} paid sessions at Stripe")
    if refunded != stats["refunds"].get("succeeded", 0) or refunded != owed:
        problems.append(f"{refunded} refunds, {stats['refunds']} at Stripe, {owed} owed")
    if unpaid_active:
        problems.append(f"{unpaid_active} confirmed bookings without a paid payment")
    return "; ".join(problems) or "matches"


def booking_summary() -> list[tuple[str, str]]:
    from django.db.models import Count

    from bookings.models import Booking
    from payments.models import Payment, Refund

    def by(model: Any, column: str) -> str:
        rows = model.objects.order_by().values_list(column).annotate(n=Count("pk"))
        return ", ".join(f"{k} {n}" for k, n in sorted(rows))

    return [
        ("bookings", by(Booking, "status")),
        ("payments", by(Payment, "status")),
        ("refunds", by(Refund, "status") or "none"),
    ]


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="a db only the bench uses")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument("--duration", type=float, default=60, help="seconds of app traffic")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--slice", type=float, default=10, help="seconds per app slice")
    parser.add_argument("--floor-share", type=float, default=0.5, help="floor time / app time")
    parser.add_argument("--warmup", type=float, default=3, help="untimed seconds of each phase")
    parser.add_argument("--race", type=int, default=200, help="concurrent holds on one slot")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--web", type=int, default=1, help="gunicorn instances (own ports)")
    parser.add_argument("--web-processes", type=int, default=4, help="gunicorn workers each")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="per worker, for gthread")
    parser.add_argument("--horizon-weeks", type=int, default=52)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=20261202)
    return parser.parse_args(argv)


def redis_claim(url: str) -> Any:
    """The bench's Redis db: refuse one that holds anything but an earlier run's keys."""
    import redis

    client = redis.Redis.from_url(url)
    if client.dbsize() and client.get("bench:owner") != REDIS_MARK.encode():
        raise SystemExit(f"{url} is not empty and not the bench's: pick another --redis-url db.")
    client.flushdb()
    client.set("bench:owner", REDIS_MARK)
    return client


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="load-bench-"))
    stack = harness.Stack(workdir)
    ok = False
    with harness.terminating_signals():
        try:
            ok = run(args, stack, workdir)
        except SystemExit as exc:  # a bounded wait ran out, or a process died
            say(f"Stopped: {exc}")
        finally:
            say("\nTearing down: processes, database, Redis db.")
            stack.close()
            if args.keep or not ok:
                say(f"Logs kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    say("Overall: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def run(args: argparse.Namespace, stack: harness.Stack, workdir: Path) -> bool:
    import os

    from django.utils import timezone

    redis_client = redis_claim(args.redis_url)
    stack.cleanups.append(redis_client.flushdb)
    harness.create_database(args.database_url)
    if args.keep:
        stack.cleanups.append(lambda: say(f"Kept the database: {args.database_url}"))
    else:
        stack.cleanups.append(lambda: harness.drop_database(args.database_url))

    base_env = dict(os.environ)
    sink = harness.SmtpSink(workdir, base_env)
    stack.add(sink.proc)
    stripe = harness.FakeStripeProc(workdir, base_env)
    stack.add(stripe.proc)
    cfg = harness.StackConfig(
        database_url=args.database_url,
        broker_url=args.redis_url,
        web_port=harness.free_port(),
        smtp_port=sink.port,
        stripe_url=stripe.url,
        extra={
            "SLOT_HORIZON_WEEKS": str(args.horizon_weeks),
            # Throttle counters shared by every web process, as in production.
            "CACHE_URL": args.redis_url,
        },
    )
    harness.setup_django(cfg.env())
    started = time.perf_counter()
    tutor, _, _ = harness.seed_tutor()
    from bookings.models import Booking, Slot

    slots = Slot.objects.filter(tutor=tutor).count()
    say(f"Seeded tutor {tutor.slug}: {slots} slots over {args.horizon_weeks} weeks "
        f"({time.perf_counter() - started:.1f} s).")  # fmt: skip
    web_ports = [cfg.web_port] + [harness.free_port() for _ in range(args.web - 1)]
    web_desc = f"{args.web_processes} {args.worker_class} workers" + (
        f" × {args.threads} threads" if args.worker_class == "gthread" else ""
    )
    if args.web > 1:
        web_desc = f"{args.web} instances × {web_desc}"
    harness.print_pairs(
        "Machine",
        harness.machine(
            [
                ("gunicorn", f"{web_desc}, 127.0.0.1:" + ",".join(map(str, web_ports))),
                (
                    "celery",
                    f"{args.workers} worker(s), --concurrency=2 (prefork), broker "
                    + args.redis_url,
                ),
                ("settings", f"{harness.SETTINGS_MODULE} (config.settings.local), DEBUG=False"),
                ("database", args.database_url),
                ("workdir", str(workdir)),
            ]
        ),
    )
    for port in web_ports:
        stack.start_web(cfg, workers=args.web_processes, worker_class=args.worker_class,
                        threads=args.threads, port=port)  # fmt: skip
    for _ in range(args.workers):
        stack.start_worker(cfg, tag="load")
    bases = [f"http://127.0.0.1:{port}" for port in web_ports]
    say(f"Stack up: {args.web} gunicorn, {args.workers} Celery worker(s), SMTP sink, "
        "fake Stripe.\n")  # fmt: skip
    checks: list[tuple[str, bool]] = []

    # a. the race
    (race_slot,) = harness.open_slot_ids(tutor, count=1)
    results, wall = asyncio.run(race(bases, race_slot, args.race))
    active = Booking.objects.filter(slot_id=race_slot, status__in=harness.ACTIVE).count()
    codes = Counter(r.split()[0] for r in results.elements())
    say(f"a. Race: {args.race} concurrent POST /api/bookings/ on slot {race_slot} ({wall:.2f} s)")
    for result, n in sorted(results.items()):
        say(f"     {result:<32} × {n}")
    race_ok = codes["201"] == 1 and results["409 slot_unavailable"] == args.race - 1 and active == 1
    say(f"     active bookings on the slot: {active} → {'PASS' if race_ok else 'FAIL'}\n")
    checks.append(("race: one 201, all others 409 slot_unavailable, one active booking", race_ok))

    # b. the mixed workload
    say(
        f"b. Mixed workload: {args.clients} clients, {args.duration:g} s of app traffic in "
        f"{args.slice:g} s slices, each next to {args.slice * args.floor_share:g} s of the same "
        "journeys against the floors"
    )
    rec = Recorder(budget=args.max_requests)
    cpu_before = harness.cpu_snapshot()
    asyncio.run(workload(args, bases, cfg, stripe, tutor.slug, tutor.pk, rec))
    cpu = harness.cpu_report(
        cpu_before,
        harness.cpu_snapshot(),
        {
            "gunicorn": [web.pid for web in stack.webs],
            "celery worker": [worker.pid for worker in stack.workers],
            "fake stripe + smtp sink": [stripe.proc.pid, sink.proc.pid],
        },
    )
    say(f"  CPU during b (warm-up included): {cpu}")
    for proc in (*stack.webs, *stack.workers):
        proc.check_alive()
    perf_ok = report(rec, stack.workdir / "access.log")

    # c. drain and verify
    say("\nc. Afterwards")
    swept = drain(args.drain_timeout)
    say(f"  sweep run once by the bench, as beat would: {swept}")
    time.sleep(2)  # whatever the sweep sent is in the sink's log
    now = timezone.now()
    server_errors = rec.status_total(lambda st: st >= 500)
    transport_errors = rec.status_total(lambda st: st == 0)
    race_bad = sum(n for r, n in results.items() if r.startswith(("5", "error")))
    say(f"  5xx: {server_errors + race_bad}, transport errors/timeouts: {transport_errors}")
    checks.append(
        ("zero 5xx and zero transport errors", server_errors + transport_errors + race_bad == 0)
    )
    unexpected = sum(series.bad for series in rec.series.values())
    say(f"  answers other than expected (any 4xx but a hold's 409): {unexpected}")
    checks.append(("every answer as expected", unexpected == 0))
    doubles = harness.double_bookings()
    for name, rows in doubles.items():
        say(f"  {name}: {len(rows)}" + (f" {rows[:5]}" if rows else ""))
    checks.append(("zero double bookings (SQL)", not any(doubles.values())))
    mail = harness.check_mail(sink, now=now)
    for key, value in mail.lines():
        say(f"  {key:<20} {value}")
    checks.append(("every email due is sent, and reached the sink exactly once", mail.ok))
    for key, value in booking_summary():
        say(f"  {key:<20} {value}")
    stats = stripe.stats()
    say(f"  {'fake stripe':<20} sessions {stats['sessions']}, refunds {stats['refunds']}")
    money = payments_match(stats)
    say(f"  {'money':<20} {money}")
    checks.append(("payments and refunds match what the fake Stripe holds", money == "matches"))
    checks.append((f"every endpoint's median within {TARGET:g}x its floor", perf_ok))

    say("\nChecks")
    for name, passed in checks:
        say(f"  {'PASS' if passed else 'FAIL'}  {name}")
    return all(passed for _, passed in checks)


async def workload(
    args: argparse.Namespace,
    bases: list[str],
    cfg: harness.StackConfig,
    stripe: harness.FakeStripeProc,
    tutor_slug: str,
    tutor_id: int,
    rec: Recorder,
) -> None:
    connector = aiohttp.TCPConnector(
        limit=args.clients * 2, force_close=args.worker_class == "sync"
    )
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        world = World(
            bases=bases,
            stripe_control=stripe.control,
            webhook_secret=cfg.webhook_secret,
            tutor_slug=tutor_slug,
            tutor_id=tutor_id,
            horizon_days=args.horizon_weeks * 7,
            rec=rec,
            http=http,
        )
        # What the webhook's floor inserts: an event of the same shape and size.
        world.sample_event = harness.signed_event(
            {"id": "cs_test_" + "0" * 32, "object": "checkout.session", "status": "complete",
             "payment_status": "paid", "payment_intent": "pi_" + "0" * 24},
            cfg.webhook_secret,
        )[0]  # fmt: skip
        limit = args.duration * (1 + args.floor_share) + 2 * args.warmup + 120
        await asyncio.wait_for(mixed(world, args), timeout=limit)


if __name__ == "__main__":
    sys.exit(main())
