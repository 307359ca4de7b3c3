"""Fault scenarios against the real stack on loopback; each ends "nothing lost" or a failure.

    .venv/bin/python bench/faults.py [--only i,i+,ii,ii+,iii,iv,v] [--keep]
                                     [--postgres private|shared] [--cache redis|locmem]

The stack is bench/load.py's (gunicorn with bench.settings_load, one Celery worker, the
SMTP sink and fake Stripe of bench/sidecars.py), except that the broker, and by default
the cache holding the API's throttle counters, is a redis-server this script runs on a
spare port, so it can stop and start it, and the Stripe client times out after 2 s.
--cache redis (default) puts the throttle counters in that Redis, as base.py says
production does (CACHE_URL); --cache locmem keeps them per process, as a deployment
without CACHE_URL has them.

  i    Redis down while a student books: holds and the payment webhook answer normally,
       the booking and its outbox rows commit; Redis and the worker come back, beat's
       sweep task runs, and each confirmation email reaches the sink exactly once.
  i+   Redis hung instead (SIGSTOP: connections accepted, nothing answered): the hold
       and the webhook must still answer within 5 s; after SIGCONT, as in (i).
  ii   A Celery worker killed (SIGKILL, with its pool) while the sink is slow to answer
       DATA: the rows it held stay "sending"; after a restart and once the lease has
       passed (the sweep is run in-process with `now` past bookings.notifications.LEASE)
       each message is sent exactly once. ii+ repeats it with the kill landing after the
       sink accepted the message (it answers QUIT slowly): the honest at-least-once
       window of SMTP, where a second copy with the same Message-ID is expected.
  iii  PostgreSQL restarted under traffic (gunicorn and the worker keep running): the
       requests during the restart may fail and are printed; every request sent after
       it succeeds, webhooks that failed are redelivered as Stripe would, and each due
       email is sent once. --postgres private (default) restarts a throwaway cluster
       this script runs on a spare port; --postgres shared restarts the machine's
       cluster with `pg_ctlcluster ... main restart` (which also cuts off anyone else
       using it at that moment).
  iv   SMTP refusing: the sink answers 451, then 550 → the row is retried with backoff
       (30 s, by the worker's own ETA task), then "failed" with last_error set.
  v    Stripe answering 500, or timing out, on checkout → the hold answers 503
       payment_unavailable and leaves no active booking on the slot, which opens again.

Every wait is bounded; everything started is ended at the end, also on failure.
Exit status 0 only if every scenario run passed.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import say

DB_NAME = "tutoring_faults_bench"
STRIPE_TIMEOUT = 2.0
SCENARIOS = ("i", "i+", "ii", "ii+", "iii", "iv", "v")


@dataclass
class Result:
    key: str
    title: str
    ok: bool = False
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


class Failed(Exception):
    """A scenario's expectation did not hold; the message says which."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class Bench:
    """The running stack plus the student's and Stripe's side of the conversation."""

    def __init__(
        self,
        args: argparse.Namespace,
        stack: harness.Stack,
        cfg: harness.StackConfig,
        sink: harness.SmtpSink,
        stripe: harness.FakeStripeProc,
        redis: harness.RedisServer,
        pg: harness.PrivatePostgres | None,
        slots: list[int],
        *,
        cache_redis: bool,
    ) -> None:
        self.args, self.stack, self.cfg = args, stack, cfg
        self.cache_redis = cache_redis
        self.sink, self.stripe, self.redis, self.pg = sink, stripe, redis, pg
        self.slots = slots
        self.students = 0
        self.http = requests.Session()

    # --- the student --------------------------------------------------------------------------

    def next_slot(self) -> int:
        if not self.slots:
            raise Failed("ran out of open slots to book")
        return self.slots.pop(0)

    def call(
        self, method: str, path: str, *, timeout: float = 30, **kwargs: Any
    ) -> requests.Response:
        self.students += 1
        headers = {
            "X-Forwarded-For": harness.student_ip(self.students),
            **kwargs.pop("headers", {}),
        }
        return self.http.request(
            method, self.cfg.base_url + path, headers=headers, timeout=timeout, **kwargs
        )

    def hold(self, slot_id: int, tag: str, *, timeout: float = 30) -> requests.Response:
        body = {
            "slot": slot_id,
            "mode": "remote",
            "student_name": f"Student {tag}",
            "student_email": f"{tag}.{uuid.uuid4().hex[:8]}@example.com",
            "student_timezone": "Europe/Berlin",
        }
        return self.call("POST", "/api/bookings/", json=body, timeout=timeout)

    def pay(self, booking: dict[str, Any]) -> tuple[requests.Response, bytes, str]:
        """The student pays on Stripe's page, then Stripe delivers the signed event."""
        session = self.stripe.complete(harness.session_id_from(booking["payment_url"]))
        payload, signature = harness.signed_event(session, self.cfg.webhook_secret)
        return self.deliver(payload, signature), payload, signature

    def deliver(self, payload: bytes, signature: str, *, timeout: float = 30) -> requests.Response:
        return self.call(
            "POST",
            "/payments/stripe/webhook/",
            data=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            timeout=timeout,
        )

    def book_and_pay(self, tag: str) -> str:
        """A confirmed booking, the normal way; returns its id."""
        held = self.hold(self.next_slot(), tag)
        expect(held.status_code == 201, f"hold answered {held.status_code}: {held.text[:200]}")
        paid, _, _ = self.pay(held.json())
        expect(paid.status_code == 200, f"webhook answered {paid.status_code}: {paid.text[:200]}")
        booking_id: str = held.json()["id"]
        return booking_id

    # --- the outbox ----------------------------------------------------------------------------

    @staticmethod
    def rows(booking_ids: Sequence[str], *, due_only: bool = True) -> list[dict[str, Any]]:
        from django.db import connections
        from django.utils import timezone

        from bookings.models import Notification

        connections.close_all()  # a fresh connection: the server may have restarted
        rows = Notification.objects.filter(booking_id__in=list(booking_ids)).order_by("pk")
        if due_only:
            rows = rows.filter(due_at__lte=timezone.now())
        fields = ("pk", "kind", "recipient", "state", "attempts", "claimed_at", "due_at")
        return [dict(row) for row in rows.values(*fields, "last_error")]

    def show_rows(self, booking_ids: Sequence[str], label: str) -> list[dict[str, Any]]:
        rows = self.rows(booking_ids)
        say(f"  outbox {label}:")
        for r in rows:
            error = f", last_error {r['last_error'][:70]!r}" if r["last_error"] else ""
            say(f"    #{r['pk']} {r['kind']} → {r['recipient']}: {r['state']}, "
                f"attempts {r['attempts']}{error}")  # fmt: skip
        return rows

    def wait_sent(self, booking_ids: Sequence[str], *, timeout: float) -> list[dict[str, Any]]:
        """Until every due row of these bookings is sent and the sink has each one."""

        def done() -> list[dict[str, Any]] | None:
            rows = self.rows(booking_ids)
            accepted = self.sink.count("accepted", [r["pk"] for r in rows])
            if rows and all(r["state"] == "sent" and accepted[r["pk"]] for r in rows):
                return rows
            return None

        return harness.wait_for("the emails to be sent", done, timeout=timeout, interval=0.5)

    def exactly_once(self, booking_ids: Sequence[str]) -> harness.MailCheck:
        from django.utils import timezone

        time.sleep(3)  # a late second copy would show up by now
        check = harness.check_mail(self.sink, now=timezone.now(), booking_ids=booking_ids)
        say(
            f"  sink: {check.sent} rows sent, lost {len(check.lost)}, duplicated "
            f"{len(check.duplicated)}, aborted copies {check.aborted}, refused {check.refused}"
        )
        return check

    def beat_sweep(self) -> None:
        """What celery beat does every minute: queue the outbox sweep for the worker."""
        from config.celery_app import app

        app.send_task("bookings.tasks.send_due_notifications")

    @staticmethod
    def active_on(slot_id: int) -> int:
        from bookings.models import Booking

        return Booking.objects.filter(slot_id=slot_id, status__in=harness.ACTIVE).count()


# --- scenarios --------------------------------------------------------------------------------


def redis_down(b: Bench, r: Result) -> None:
    from bookings.models import Booking

    slot = b.next_slot()
    b.redis.stop()
    say(f"  redis-server on :{b.redis.port} stopped (broker{' and cache' * b.cache_redis})")
    started = time.monotonic()
    held = b.hold(slot, "redis-down")
    hold_s = time.monotonic() - started
    say(f"  POST /api/bookings/ → {held.status_code} in {hold_s:.2f} s {held.text[:160]}")
    expect(held.status_code == 201, f"the hold answered {held.status_code} with Redis down")
    started = time.monotonic()
    paid, _, _ = b.pay(held.json())
    pay_s = time.monotonic() - started
    say(f"  webhook checkout.session.completed → {paid.status_code} in {pay_s:.2f} s "
        f"{paid.text[:120]}")  # fmt: skip
    expect(paid.status_code == 200, f"the webhook answered {paid.status_code} with Redis down")
    booking_id = held.json()["id"]
    status = Booking.objects.get(pk=booking_id).status
    rows = b.show_rows([booking_id], "committed while Redis was down")
    expect(status == "confirmed", f"booking is {status}")
    expect(
        len(rows) == 2 and all(row["state"] == "pending" for row in rows),
        "the two confirmation rows are not waiting as pending",
    )
    r.notes.append(f"with Redis down: hold {held.status_code} in {hold_s:.2f} s, "
                   f"webhook {paid.status_code} in {pay_s:.2f} s")  # fmt: skip

    b.redis.start()
    b.stack.restart_worker(b.cfg)
    say("  redis-server started again, worker restarted; queueing beat's sweep task")
    b.beat_sweep()
    b.wait_sent([booking_id], timeout=60)
    check = b.exactly_once([booking_id])
    expect(check.ok, f"emails not exactly once: {check.lines()}")


def redis_hung(b: Bench, r: Result) -> None:
    """Redis alive but not answering (SIGSTOP): a stalled or overloaded server, or a
    network path that drops packets. Nothing may wait on it for long in a request."""
    from bookings.models import Booking

    slot = b.next_slot()
    problems: list[str] = []
    booking_id = ""
    b.redis.pause()
    say(f"  redis-server on :{b.redis.port} paused with SIGSTOP (broker"
        f"{' and cache' * b.cache_redis}); requests time out after 40 s")  # fmt: skip
    try:
        started = time.monotonic()
        try:
            held = b.hold(slot, "redis-hung", timeout=40)
            took, status = time.monotonic() - started, held.status_code
        except requests.RequestException as exc:
            held, took, status = None, time.monotonic() - started, 0
            say(f"  hold: no answer ({type(exc).__name__})")
        say(f"  POST /api/bookings/ → {status} in {took:.2f} s")
        if status != 201 or took > 5:
            problems.append(f"hold answered {status} after {took:.1f} s")
        if held is not None and status == 201:
            booking_id = held.json()["id"]
            session = b.stripe.complete(harness.session_id_from(held.json()["payment_url"]))
            payload, signature = harness.signed_event(session, b.cfg.webhook_secret)
            started = time.monotonic()
            try:
                paid = b.deliver(payload, signature, timeout=40)
                took, status = time.monotonic() - started, paid.status_code
            except requests.RequestException as exc:
                took, status = time.monotonic() - started, 0
                say(f"  webhook: no answer ({type(exc).__name__})")
            say(f"  webhook checkout.session.completed → {status} in {took:.2f} s")
            if status != 200 or took > 5:
                problems.append(f"webhook answered {status} after {took:.1f} s")
            r.notes.append(f"with Redis hung: webhook {status} after {took:.1f} s")
    finally:
        b.redis.resume()
    say("  redis-server resumed (SIGCONT)")
    if booking_id:
        state = Booking.objects.get(pk=booking_id).status
        rows = b.show_rows([booking_id], "after the hang")
        say(f"  booking: {state}")
        if state != "confirmed" or len(rows) != 2:
            problems.append(f"booking {state} with {len(rows)} confirmation rows")
        else:  # Stripe redelivers what failed; beat's next sweep sends what waits
            b.beat_sweep()
            b.wait_sent([booking_id], timeout=60)
            check = b.exactly_once([booking_id])
            if not check.ok:
                problems.append("emails not exactly once")
    expect(not problems, "; ".join(problems))


def worker_killed(b: Bench, r: Result, *, after_accept: bool) -> None:
    from django.utils import timezone

    from bookings import notifications

    if after_accept:
        b.sink.set_mode(quit_delay=8)  # the message is taken; the client waits on QUIT
        say("  sink: accepts at once, answers QUIT only after 8 s")
    else:
        b.sink.set_mode(delay=8)  # the body arrived; the 250 comes after 8 s
        say("  sink: answers DATA only after 8 s")
    booking_id = b.book_and_pay("killed-worker")
    row_ids = [row["pk"] for row in b.rows([booking_id])]
    seen = "accepted" if after_accept else "data"

    def in_flight() -> list[int] | None:
        counts = b.sink.count(seen, row_ids)
        return [pk for pk in row_ids if counts[pk]] or None

    mid_send = harness.wait_for("the worker to be mid-send", in_flight, timeout=30)
    time.sleep(0.3)
    worker = b.stack.worker
    assert worker is not None
    worker.kill()
    say(f"  SIGKILL to the worker (pid {worker.pid} and its pool) while it sent {mid_send}")
    time.sleep(1.5)
    b.sink.set_mode()
    aborted = b.sink.count("aborted", row_ids)
    accepted_before = b.sink.count("accepted", row_ids)
    say(f"  sink so far: accepted {dict(accepted_before)}, aborted {dict(aborted)}")
    b.show_rows([booking_id], "after the kill")
    b.stack.restart_worker(b.cfg)
    time.sleep(3)
    rows = b.show_rows([booking_id], "3 s after a new worker started")
    stuck = [row["pk"] for row in rows if row["state"] == "sending"]
    expect(
        not any(b.sink.count("accepted", stuck)[pk] > accepted_before[pk] for pk in stuck),
        "a row still inside its lease was sent again",
    )
    later = timezone.now() + notifications.LEASE + timedelta(minutes=1)
    swept = notifications.sweep(now=later)
    say(f"  sweep(now = now + LEASE + 1 min), in-process: {swept}")
    b.wait_sent([booking_id], timeout=60)
    check = b.exactly_once([booking_id])
    expect(not check.lost and not check.due_not_sent, "an email was lost")
    if after_accept:
        copies = {pk: n for pk, n in check.duplicated.items()}
        say(f"  second copies, same Message-ID: {copies or 'none'}")
        if copies:
            r.verdict = f"nothing lost; {len(copies)} message(s) delivered twice, same Message-ID"
        r.notes.append(
            f"{sum(copies.values()) - len(copies)} second copy(ies) of {sorted(copies)}: the "
            "kill came after the sink's 250, before the row was marked sent (SMTP's "
            "at-least-once window); each copy carries the same Message-ID"
            if copies
            else "no second copy"
        )
    else:
        expect(check.ok, f"emails not exactly once: {check.lines()}")
        r.notes.append(f"{check.aborted} copy(ies) cut off mid-DATA were not taken by the sink")


@dataclass
class Shot:
    sent: float
    label: str
    status: int  # 0: no answer (connection error / timeout)
    took: float
    detail: str = ""


def postgres_restart(b: Bench, r: Result) -> None:
    from django.db import connections

    from bookings.models import Booking, BookingStatus

    shots: list[Shot] = []
    confirmed: list[str] = []
    failed_events: list[tuple[bytes, str]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def shoot(
        label: str, ok: Sequence[int], fn: Callable[..., requests.Response], *args: Any
    ) -> Any:
        started = time.monotonic()
        try:
            response = fn(*args)
            status, detail = response.status_code, response.text[:100]
        except requests.RequestException as exc:
            response, status, detail = None, 0, type(exc).__name__
        with lock:
            shots.append(
                Shot(started, label, status, time.monotonic() - started,
                     "" if status in ok else detail)
            )  # fmt: skip
        return response if status in ok else None

    def traffic() -> None:
        deadline = time.monotonic() + 60
        for _ in range(150):  # bounded in count and in time
            if stop.is_set() or time.monotonic() > deadline or len(b.slots) < 20:
                return
            shoot("GET /api/slots/", (200,), b.call, "GET", "/api/slots/?tutor=ada-bench")
            held = shoot("POST /api/bookings/", (201,), b.hold, b.next_slot(), "pg-restart")
            if held is not None:
                session = b.stripe.complete(harness.session_id_from(held.json()["payment_url"]))
                payload, signature = harness.signed_event(session, b.cfg.webhook_secret)
                paid = shoot("POST webhook", (200,), b.deliver, payload, signature)
                if paid is None:
                    failed_events.append((payload, signature))
                else:
                    confirmed.append(held.json()["id"])
            time.sleep(0.2)  # a few students a second

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    time.sleep(3)
    down = time.monotonic()
    if b.pg is not None:
        b.pg.restart()
        how = f"pg_ctl restart -m fast (private cluster on :{b.pg.port})"
    else:
        harness.restart_shared_cluster()
        how = "pg_ctlcluster --skip-systemctl-redirect <version> main restart"
    up = time.monotonic()
    say(f"  {how}: {up - down:.2f} s")
    time.sleep(6)
    stop.set()
    thread.join(30)
    expect(not thread.is_alive(), "the traffic thread did not stop")
    connections.close_all()  # this process's own connection died with the server

    # "during": in flight at any moment of the restart, wherever it was sent.
    before = [s for s in shots if s.sent + s.took < down]
    during = [s for s in shots if s.sent < up and s.sent + s.took >= down]
    after = [s for s in shots if s.sent >= up]
    for name, part in (("before", before), ("during", during), ("after", after)):
        bad = [s for s in part if s.detail]
        say(f"  requests sent {name} the restart: {len(part)}, failed {len(bad)}")
        for s in bad:
            say(f"    {s.label}: {s.status or 'no answer'} after {s.took:.2f} s {s.detail!r}")
    expect(not [s for s in before if s.detail], "requests failed before the restart")
    expect(len(after) >= 10, f"too few requests after the restart ({len(after)})")
    late = [s for s in after if s.detail]
    expect(not late, f"{len(late)} request(s) failed after PostgreSQL was back")
    r.notes.append(
        f"restart took {up - down:.1f} s; {len([s for s in during if s.detail])} of "
        f"{len(during)} requests during it failed, 0 of {len(after)} after"
    )

    for payload, signature in failed_events:  # Stripe retries a failed delivery
        again = b.deliver(payload, signature)
        say(f"  webhook redelivered → {again.status_code} {again.text[:80]}")
        expect(again.status_code == 200, "a redelivered webhook failed")
    failed_ids = {
        str(Booking.objects.get(payments__checkout_session_id=_session_of(p)).pk)
        for p, _ in failed_events
    }
    booked = confirmed + sorted(failed_ids)
    statuses = Counter(Booking.objects.filter(pk__in=booked).values_list("status", flat=True))
    say(f"  bookings paid during the scenario: {dict(statuses)}")
    expect(set(statuses) == {BookingStatus.CONFIRMED}, "a paid booking is not confirmed")
    half = Booking.objects.filter(
        status=BookingStatus.PENDING_PAYMENT, payments__checkout_session_id__isnull=True
    ).count()
    say(f"  holds left without a checkout session: {half}")
    b.beat_sweep()
    b.wait_sent(booked, timeout=90)
    check = b.exactly_once(booked)
    expect(not check.lost and not check.due_not_sent, "an email was lost")
    if check.duplicated:
        r.notes.append(f"second copies (same Message-ID): {check.duplicated}")
    expect(check.ok, f"emails not exactly once: {check.lines()}")


def _session_of(payload: bytes) -> str:
    import json

    session_id: str = json.loads(payload)["data"]["object"]["id"]
    return session_id


def smtp_refusing(b: Bench, r: Result) -> None:
    from bookings.notifications import backoff

    b.sink.set_mode(reply="451")
    say("  sink: answers 451 to every message")
    booking_id = b.book_and_pay("smtp-refusing")

    def first_try() -> list[dict[str, Any]] | None:
        rows = b.rows([booking_id], due_only=False)
        due = [row for row in rows if row["kind"] == "confirmed"]
        return (
            due if due and all(row["attempts"] >= 1 and row["last_error"] for row in due) else None
        )

    rows = harness.wait_for("the first attempts", first_try, timeout=30, interval=0.25)
    for row in rows:
        wait = (row["due_at"] - row["claimed_at"]).total_seconds()
        say(f"    #{row['pk']}: {row['state']}, attempt {row['attempts']}, next try in "
            f"{wait:.0f} s, last_error {row['last_error'][:60]!r}")  # fmt: skip
        expect(row["state"] == "pending", "a 451 did not leave the row pending for a retry")
        expect(abs(wait - backoff(1).total_seconds()) < 2, "the retry is not backed off")
    first_claims = {row["pk"]: row["claimed_at"] for row in rows}
    b.sink.set_mode(reply="550")
    say("  sink: now answers 550 (permanent); waiting for the worker's own retry")

    def gave_up() -> list[dict[str, Any]] | None:
        rows = b.rows([booking_id], due_only=False)  # a failed row's due_at moved on
        rows = [row for row in rows if row["kind"] == "confirmed"]
        return rows if rows and all(row["state"] == "failed" for row in rows) else None

    rows = harness.wait_for("the rows to fail", gave_up, timeout=90, interval=0.5)
    b.sink.set_mode()
    for row in rows:
        gap = (row["claimed_at"] - first_claims[row["pk"]]).total_seconds()
        say(f"    #{row['pk']}: {row['state']} after {row['attempts']} attempts "
            f"({gap:.1f} s apart), last_error {row['last_error'][:60]!r}")  # fmt: skip
        expect(row["attempts"] == 2 and "550" in row["last_error"], "unexpected final state")
    refused = Counter(e.code for e in b.sink.events()
                      if e.ev == "refused" and e.notification in first_claims)  # fmt: skip
    accepted = b.sink.count("accepted", first_claims)
    say(f"  sink refused {dict(refused)}, accepted {sum(accepted.values())}")
    expect(refused == Counter({451: 2, 550: 2}) and not accepted, "the sink saw other tries")
    r.notes.append("451 → pending, retried after 30 s; 550 → failed with last_error")


def stripe_down(b: Bench, r: Result) -> None:
    from bookings.models import Booking
    from payments.models import Payment

    slot = b.next_slot()
    for label, arrange in (
        ("Stripe answers 500", lambda: b.stripe.fail(500, times=2)),
        (f"Stripe takes {STRIPE_TIMEOUT + 2:g} s (client timeout {STRIPE_TIMEOUT:g} s)",
         lambda: b.stripe.delay(STRIPE_TIMEOUT + 2, times=2)),
    ):  # fmt: skip
        arrange()
        started = time.monotonic()
        held = b.hold(slot, "stripe-down")
        took = time.monotonic() - started
        code = held.json().get("code") if held.headers.get("Content-Type", "").startswith(
            "application/json") else None  # fmt: skip
        left = b.active_on(slot)
        booking = Booking.objects.filter(slot_id=slot).order_by("-created_at").first()
        payment = Payment.objects.filter(booking=booking).first() if booking else None
        say(f"  {label}: hold → {held.status_code} {code} in {took:.2f} s; active bookings on "
            f"the slot {left}; the hold is {booking.status if booking else None}, its payment "
            f"{payment.status if payment else None}")  # fmt: skip
        expect(held.status_code == 503 and code == "payment_unavailable", f"{label}: wrong answer")
        expect(left == 0, f"{label}: an active booking remains")
    again = b.hold(slot, "stripe-back")
    say(f"  Stripe healthy again: hold on the same slot → {again.status_code}")
    expect(again.status_code == 201, "the slot did not open again")
    token = again.json()["manage_url"].rstrip("/").rsplit("/", 1)[-1]
    cancelled = b.call("POST", f"/api/bookings/{token}/cancel/")
    expect(cancelled.status_code == 200, "could not cancel the test hold")
    sessions = b.stripe.stats()["sessions"]
    r.notes.append(f"fake Stripe sessions by status afterwards: {sessions}")


# --- main ---------------------------------------------------------------------------------------


TITLES = {
    "i": "Redis down while a student books",
    "i+": "Redis hung (SIGSTOP) while a student books",
    "ii": "Celery worker killed (SIGKILL) mid-send",
    "ii+": "Celery worker killed after the SMTP server took the message",
    "iii": "PostgreSQL restarted under traffic",
    "iv": "SMTP refusing: 451, then 550",
    "v": "Stripe answering 500 / timing out on checkout",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="e.g. i,iii")
    parser.add_argument("--postgres", choices=["private", "shared"], default="private")
    parser.add_argument(
        "--cache", choices=["redis", "locmem"], default="redis",
        help="where the throttle counters live: the same Redis (production) or per process",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs (database: dropped)")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    stack = harness.Stack(workdir)
    results: list[Result] = []
    with harness.terminating_signals():
        try:
            run(args, stack, workdir, results)
        except SystemExit as exc:  # setup could not finish: say why, still tear down
            say(f"Stopped: {exc}")
            results.append(Result("-", "setup", verdict=f"FAILED: {exc}"))
        finally:
            say("\nTearing down: processes, database, private Redis and PostgreSQL.")
            stack.close()
    say("\nSummary")
    for res in results:
        say(f"  ({res.key:<3}) {res.title:<58} {res.verdict}")
        for note in res.notes:
            say(f"          {note}")
    ok = len(results) == len(args.only) and all(res.ok for res in results)
    if args.keep or not ok:
        say(f"Logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    say("Overall: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def run(
    args: argparse.Namespace, stack: harness.Stack, workdir: Path, results: list[Result]
) -> None:
    import os

    base_env = dict(os.environ)
    pg: harness.PrivatePostgres | None = None
    if args.postgres == "private":
        pg = harness.PrivatePostgres(workdir)
        stack.cleanups.append(pg.close)
        pg.init_and_start()
        database_url = pg.url(DB_NAME)
    else:
        database_url = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    harness.create_database(database_url)
    stack.cleanups.append(lambda: harness.drop_database(database_url))
    redis = harness.RedisServer(workdir, base_env)
    stack.cleanups.append(redis.stop)
    redis.start()
    sink = harness.SmtpSink(workdir, base_env)
    stack.add(sink.proc)
    stripe = harness.FakeStripeProc(workdir, base_env)
    stack.add(stripe.proc)
    extra = {"STRIPE_TIMEOUT_SECONDS": str(STRIPE_TIMEOUT)}
    if args.cache == "redis":
        extra["CACHE_URL"] = redis.url.replace("/0", "/1")
    cfg = harness.StackConfig(
        database_url=database_url,
        broker_url=redis.url,
        web_port=harness.free_port(),
        smtp_port=sink.port,
        stripe_url=stripe.url,
        extra=extra,
    )
    harness.setup_django(cfg.env())
    tutor, _, _ = harness.seed_tutor()
    slots = harness.open_slot_ids(tutor, count=300)
    harness.print_pairs(
        "Machine",
        harness.machine(
            [
                ("postgres used", f"{args.postgres}: {database_url}"),
                ("redis used", f"private redis-server: broker {redis.url}, cache "
                               f"{extra.get('CACHE_URL', 'locmem (per process)')}"),
                ("stack", "gunicorn 2 sync workers, 1 Celery worker --concurrency=2"),
                ("workdir", str(workdir)),
            ]
        ),
    )  # fmt: skip
    stack.start_web(cfg, workers=2, worker_class="sync", threads=1)
    stack.start_worker(cfg, tag="faults")
    bench = Bench(
        args, stack, cfg, sink, stripe, redis, pg, slots, cache_redis=args.cache == "redis"
    )
    scenarios: dict[str, Callable[[Bench, Result], None]] = {
        "i": redis_down,
        "i+": redis_hung,
        "ii": lambda b, r: worker_killed(b, r, after_accept=False),
        "ii+": lambda b, r: worker_killed(b, r, after_accept=True),
        "iii": postgres_restart,
        "iv": smtp_refusing,
        "v": stripe_down,
    }
    for key in args.only:
        result = Result(key, TITLES[key])
        results.append(result)
        say(f"\n=== ({key}) {result.title} ===")
        started = time.monotonic()
        errors_before = len(harness.server_errors(stack.workdir / "web.log"))
        try:
            with restored(bench):
                scenarios[key](bench, result)
            result.ok = True
            result.verdict = result.verdict or "nothing lost"
        except (Failed, SystemExit) as exc:  # SystemExit: a bounded wait ran out
            result.verdict = f"FAILED: {exc}"
        for error in harness.server_errors(stack.workdir / "web.log")[errors_before:]:
            say(f"  gunicorn logged: {error}")
            if not result.ok:
                result.notes.append(f"server error: {error}")
        say(f"  verdict: {result.verdict} ({time.monotonic() - started:.0f} s)")
    from django.db import connections

    connections.close_all()
    doubles = harness.double_bookings()
    say("\nAfter all scenarios: " + ", ".join(f"{k}: {len(v)}" for k, v in doubles.items()))


@contextlib.contextmanager
def restored(b: Bench) -> Iterator[None]:
    """Whatever a scenario broke is mended before the next one runs."""
    try:
        yield
    finally:
        b.sink.set_mode()
        if b.redis.proc is None or not b.redis.proc.alive:
            b.redis.start()
        worker = b.stack.worker
        if worker is None or not worker.alive:
            b.stack.restart_worker(b.cfg)
        web = b.stack.web
        if web is not None:
            web.check_alive()


if __name__ == "__main__":
    sys.exit(main())
