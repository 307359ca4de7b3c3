"""How the reminder sweep's selection scales: 1,000 vs 100,000 future bookings.

    .venv/bin/python bench/reminders.py [--database-url postgres://…/tutoring_bench_reminders]

The sweep runs every minute and asks one question: which pending outbox rows are due
now? (bookings.notifications.due_ids, a partial index on due_at WHERE state='pending').
This script fills a PostgreSQL database with N confirmed future bookings, each owing its
two reminders (24 h and 1 h before), plus a fixed 50 rows due right now, and times that
selection at N = 1,000 and N = 100,000. With an index the cost follows the 50 due rows,
not N: the target is that the 100,000 case stays within 2x the 1,000 case. It also prints
PostgreSQL's plan for the query. The database (name must contain "bench") is dropped at
the end unless --keep.

Rows are written with INSERT ... SELECT generate_series (seconds for 100,000 bookings);
the timed part is the application's own function.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import drop_database, machine, print_pairs, recreate_database, setup_django

DUE_NOW = 50


def fill(n: int, now: datetime) -> None:
    """N confirmed bookings an hour apart from tomorrow on, each with two reminder rows
    due in the future, plus DUE_NOW rows due now. Replaces whatever was there."""
    from django.db import connection

    from bookings.models import Mode, Offering, Tutor
    from tests.conftest import add_offerings

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE bookings_notification, bookings_bookingevent, payments_refund, "
            "payments_payment, bookings_booking, bookings_slot CASCADE"
        )
    tutor = Tutor.objects.first()
    if tutor is None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user("bench-tutor")
        tutor = Tutor.objects.create(
            user=user, slug="bench", display_name="Bench", email="bench@example.com"
        )
        add_offerings(tutor)
    remote = Offering.objects.get(tutor=tutor, mode=Mode.REMOTE)
    start = now + timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO bookings_slot (tutor_id, start, "end", source, remote_offering_id,
                                       removed_reason, created_at)
            SELECT %s, %s + i * interval '1 hour', %s + i * interval '1 hour' + interval '50 min',
                   'one_off', %s, '', %s
            FROM generate_series(0, %s - 1) AS i
            """,
            [tutor.pk, start, start, remote.pk, now, n],
        )
        cursor.execute(
            """
            INSERT INTO bookings_booking (id, tutor_id, slot_id, offering_id, mode, student_name,
                student_email, student_timezone, notes, price_amount, currency, status,
                refund_amount, manage_key, calendar_uid, sequence, created_at,
                updated_at, confirmed_at)
            SELECT gen_random_uuid(), s.tutor_id, s.id, s.remote_offering_id, 'remote',
                   'Student ' || s.id, 'student' || s.id || '@example.com', '', '', 9000,
                   'usd', 'confirmed', 0, left(md5(random()::text || s.id), 22),
                   gen_random_uuid() || '@bench.invalid', 0, %s, %s, %s
            FROM bookings_slot s
            """,
            [now, now, now],
        )
        for minutes in (1440, 60):
            cursor.execute(
                """
                INSERT INTO bookings_notification (booking_id, kind, recipient, key, context,
                    due_at, state, attempts, last_error, created_at, message_id)
                SELECT b.id, 'reminder', 'student', %s || 'm@' || s.start, '{}'::jsonb,
                       s.start - %s * interval '1 minute', 'pending', 0, '', %s,
                       gen_random_uuid() || '@bench.invalid'
                FROM bookings_booking b JOIN bookings_slot s ON s.id = b.slot_id
                """,
                [minutes, minutes, now],
            )
        # The rows a sweep at `now` must find: the same 50 whatever N is.
        cursor.execute(
            """
            UPDATE bookings_notification SET due_at = %s - interval '1 minute'
            WHERE id IN (SELECT id FROM bookings_notification ORDER BY id LIMIT %s)
            """,
            [now, DUE_NOW],
        )
        # Most of a real outbox is history: sent rows the partial index leaves out.
        cursor.execute(
            """
            UPDATE bookings_notification SET state = 'sent', sent_at = %s
            WHERE id IN (SELECT id FROM bookings_notification ORDER BY id DESC LIMIT %s)
            """,
            [now, n // 2],
        )
        cursor.execute("ANALYZE")


def time_selection(now: datetime, rounds: int) -> tuple[float, float, int]:
    from bookings.notifications import due_ids

    for _ in range(20):
        due_ids(now=now)  # warm-up: plans and caches
    samples = []
    found = 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = len(due_ids(now=now))
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1], found


def explain(now: datetime) -> str:
    from django.db import connection

    from bookings.models import Notification, NotificationState

    qs = (
        Notification.objects.filter(state=NotificationState.PENDING, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:500]
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ANALYZE {sql}", params)
        return "\n".join(f"    {row[0]}" for row in cursor.fetchall())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/tutoring_bench_reminders"
    )
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    recreate_database(args.database_url)
    try:
        setup_django(args.database_url)
        print_pairs("Machine", machine())
        now = datetime.now(UTC).replace(microsecond=0)
        results = {}
        for n in (1_000, 100_000):
            started = time.monotonic()
            fill(n, now)
            seeded = time.monotonic() - started
            median, p99, found = time_selection(now, args.rounds)
            results[n] = median
            print(
                f"\n{n:>7,} future bookings ({2 * n:,} reminder rows, {n // 2:,} already sent; "
                f"seeded in {seeded:.1f} s): selection median {median:.3f} ms, "
                f"p99 {p99:.3f} ms, {found} due rows found"
            )
            print(explain(now))
        ratio = results[100_000] / results[1_000]
        verdict = "PASS" if ratio <= 2 else "FAIL"
        print(f"\n100,000 vs 1,000: {ratio:.2f}x (target <= 2x) {verdict}")
        return 0 if verdict == "PASS" else 1
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.database_url)


if __name__ == "__main__":
    raise SystemExit(main())
