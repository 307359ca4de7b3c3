"""Calendar sync at scale, and the slot list with busy times against its floor.

    .venv/bin/python bench/calendars.py [--database-url postgres://…/tutoring_bench_calendars]

What it does, in one process (PostgreSQL, config.settings.test, like bench/core.py):

1. Re-creates the bench database and seeds bench/core.py's tutor (five years of history,
   the 8-week horizon, ~20 % of the next four weeks booked) plus 18 more tutors.
2. Serves 20 ICS calendars of 2,000 events each from a local HTTP server (threads on
   127.0.0.1, with ETags): Google-export shaped, ~85 % history, weekly series with an
   EXDATE and an override, all-day and free events. Two belong to the measured tutor,
   one to each other tutor. CALENDAR_ALLOW_PRIVATE_ADDRESSES is turned on for loopback.
3. Times calendars.services.source_sync for all 20 sources, one after the other, as the
   Celery tasks would run them: a first sync (fetch, parse, expand, insert), a second
   one that the server answers 304, and a third after every calendar changed (fetch,
   parse, replace). Peak memory: tracemalloc's peak of one source's sync (Python
   allocations, measured on a fourth, changed round so it does not slow the timed
   ones), and the process's max RSS.
4. Times GET /api/slots/ for the tutor (four weeks) against bench/core.py's floor (the
   one indexed slot query), interleaved, with the busy times in place: the busy times
   are rows read in the same query as the bookings, never parsed per request. Target:
   median within 3x the floor's, as for bench/core.py.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import core

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tutoring_bench_calendars"
SOURCES = 20
EVENTS = 2_000
TARGET = 3.0


# --- the calendars --------------------------------------------------------------------------


def calendar(rng: random.Random, *, now: datetime, version: int, name: str) -> bytes:
    """EVENTS events the way a Google export has them: mostly history; weekly series
    (one with an EXDATE and a moved occurrence); all-day and free events; folded lines."""
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{name}",
        "X-WR-TIMEZONE:America/New_York",
    ]
    stamp = f"DTSTAMP:{now:%Y%m%dT%H%M%SZ}"
    for i in range(EVENTS):
        uid = f"{name}-{i}-v{version}@google.com"
        kind = i % 40
        if kind == 0:  # a weekly series over the horizon, with an exception and a move
            start = now + timedelta(days=rng.randrange(7), hours=rng.randrange(8, 22))
            start = start.replace(minute=0, second=0, microsecond=0)
            lines += [
                "BEGIN:VEVENT",
                f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
                "RRULE:FREQ=WEEKLY;COUNT=12",
                f"EXDATE:{start + timedelta(weeks=2):%Y%m%dT%H%M%SZ}",
                stamp,
                f"UID:{uid}",
                "SUMMARY:Weekly thing",
                "END:VEVENT",
                "BEGIN:VEVENT",
                f"DTSTART:{start + timedelta(weeks=3, hours=1):%Y%m%dT%H%M%SZ}",
                f"DTEND:{start + timedelta(weeks=3, hours=2):%Y%m%dT%H%M%SZ}",
                f"RECURRENCE-ID:{start + timedelta(weeks=3):%Y%m%dT%H%M%SZ}",
                stamp,
                f"UID:{uid}",
                "SUMMARY:Weekly thing (moved)",
                "END:VEVENT",
            ]
            continue
        future = kind == 1 or kind == 2
        if future:
            start = now + timedelta(hours=rng.randrange(24, 24 * 70))
        else:
            start = now - timedelta(hours=rng.randrange(24, 24 * 365 * 3))
        start = start.replace(minute=0, second=0, microsecond=0)
        lines.append("BEGIN:VEVENT")
        if kind == 3:
            lines += [
                f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}",
            ]
        else:
            lines += [
                f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
            ]
        lines += [
            stamp,
            f"UID:{uid}",
            f"SUMMARY:Event {i}",
            "DESCRIPTION:Notes a real calendar carries along\\, with a link to the video c",
            " all and a few words about what to bring.",
            "LOCATION:Somewhere\\, New York",
            "STATUS:CONFIRMED",
            f"TRANSP:{'TRANSPARENT' if kind == 4 else 'OPAQUE'}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class Server:
    """path → (etag, body), answering 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[str, bytes]] = {}
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                etag, body = bodies[self.path]
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


# --- seeding --------------------------------------------------------------------------------


def seed_sources(tutor: Any, server: Server, now: datetime, rng: random.Random) -> list[int]:
    from django.contrib.auth import get_user_model

    from bookings.models import Tutor
    from calendars import crypto
    from calendars.models import CalendarSource

    owners = [tutor, tutor]
    for n in range(SOURCES - 2):
        user = get_user_model().objects.create_user(username=f"cal-bench-{n}", password=None)
        owners.append(
            Tutor.objects.create(
                user=user, slug=f"cal-bench-{n}", display_name=f"T {n}", email=f"t{n}@example.com"
            )
        )
    ids = []
    for n, owner in enumerate(owners):
        path = f"/cal/{n}.ics"
        server.bodies[path] = ('"v1"', calendar(rng, now=now, version=1, name=f"cal{n}"))
        # Rows made directly: services.source_create would queue a first sync at once.
        source = CalendarSource.objects.create(
            tutor=owner,
            name=f"Calendar {n}",
            host="127.0.0.1",
            secret=crypto.encrypt({"url": server.url(path), "username": "", "password": ""}),
            next_sync_at=now,
        )
        ids.append(source.pk)
    return ids


def change_all(server: Server, now: datetime, rng: random.Random, version: int) -> None:
    for n, path in enumerate(list(server.bodies)):
        server.bodies[path] = (
            f'"v{version}"',
            calendar(rng, now=now, version=version, name=f"cal{n}"),
        )


# --- measuring ------------------------------------------------------------------------------


def sync_round(ids: Sequence[int], now: datetime) -> tuple[float, list[float], dict[str, int]]:
    from calendars import services

    outcomes: dict[str, int] = {}
    each = []
    started = time.perf_counter()
    for source_id in ids:
        t = time.perf_counter()
        result = services.source_sync(source_id=source_id, now=now, force=True)
        each.append((time.perf_counter() - t) * 1000)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.outcome == "failed":
            raise SystemExit(f"source {source_id} failed: {result.error}")
    return time.perf_counter() - started, each, outcomes


def memory_round(ids: Sequence[int], now: datetime) -> int:
    """The largest tracemalloc peak of one source's sync, in bytes."""
    from calendars import services

    peak = 0
    tracemalloc.start()
    try:
        for source_id in ids:
            tracemalloc.reset_peak()
            services.source_sync(source_id=source_id, now=now, force=True)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    return peak


def describe(label: str, total: float, each: list[float], outcomes: dict[str, int]) -> str:
    per = statistics.median(each)
    return (
        f"{label:<34} {total:6.2f} s total  {per:7.1f} ms median/source  "
        f"{max(each):7.1f} ms max  {outcomes}"
    )


def run(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.test import Client

    from bookings.models import BusyInterval

    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True  # the local calendar server
    # Sessions under new busy times owe the tutor an email: kept in memory, not var/mail.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    started = time.perf_counter()
    data = core.seed(seed=args.seed, pool_size=1)
    server = Server()
    rng = random.Random(args.seed)
    ids = seed_sources(data.tutor, server, data.now, rng)
    size = sum(len(body) for _, body in server.bodies.values())
    core.print_pairs("Machine", core.machine())
    core.print_pairs(
        f"Data (seeded in {time.perf_counter() - started:.1f} s)",
        [
            *core.dataset_summary(data),
            ("calendars", f"{SOURCES} × {EVENTS:,} events, {size / SOURCES / 1024:.0f} KB each"),
        ],
    )

    print("Sync of all sources, one after the other (calendars.services.source_sync)")
    now = data.now
    first = sync_round(ids, now)
    print(describe("first sync (200, parse, insert)", *first))
    again = sync_round(ids, now + timedelta(minutes=10))
    print(describe("unchanged (304)", *again))
    change_all(server, now, rng, 2)
    changed = sync_round(ids, now + timedelta(minutes=20))
    print(describe("every calendar changed (replace)", *changed))
    change_all(server, now, rng, 3)
    peak = memory_round(ids, now + timedelta(minutes=30))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of one source's sync: {peak / 2**20:.1f} MiB (tracemalloc)")
    print(f"process max RSS (whole bench, seeding included): {rss:.0f} MiB")
    mine = BusyInterval.objects.filter(tutor=data.tutor)
    in_window = mine.filter(end__gt=data.window_start, start__lt=data.window_end).count()
    print(
        f"busy intervals stored: {BusyInterval.objects.count():,} "
        f"({mine.count()} of the measured tutor, {in_window} in the slot window)\n"
    )

    client = Client()
    ep = core.endpoints(client, data)
    answer = json.loads(ep.slots(0).content)
    floor = json.loads(ep.slots_floor(0).content)
    print(
        f"Slot list answers {answer['count']} open slots of the {floor['count']} the floor "
        "returns (busy times and bookings hide the rest).\n"
    )
    slots = core.Series("GET /api/slots/ (busy times)")
    slots_floor = core.Series("slots floor (1 query)")
    core.measure_interleaved(
        slots, ep.slots, slots_floor, ep.slots_floor,
        iterations=args.slots_iterations, warmup=args.warmup,
    )  # fmt: skip
    ratio = slots.median / slots_floor.median
    ok = ratio <= TARGET
    print("Latency, ms (n after warm-up; endpoint and floor interleaved)")
    for series in (slots, slots_floor):
        print(
            f"  {series.name:<32} median {series.median:6.2f}  p90 {series.p90:6.2f}  "
            f"p99 {series.p99:6.2f}  (n={len(series.samples_ms)})"
        )
    print(f"  ratio {ratio:.2f}x (target {TARGET:.1f}x): {'PASS' if ok else 'FAIL'}")
    queries = core.count_queries(ep.slots)
    print(f"  GET /api/slots/ runs {queries.statements} statements\n")
    print("Overall:", "PASS" if ok else "FAIL")
    return 1 if args.check and not ok else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the bench database behind")
    parser.add_argument("--slots-iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    core.recreate_database(args.database_url)
    try:
        core.setup_django(args.database_url)
        return run(args)
    finally:
        if args.keep:
            print(f"Kept the bench database: {args.database_url}")
        else:
            core.drop_database(args.database_url)


if __name__ == "__main__":
    sys.exit(main())
