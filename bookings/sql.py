"""The hold's reads: the one write path students hammer, in as few statements as it can.

1. The slot with its tutor and offerings, the tutor's row locked (holds serialise per
   tutor) and, on PostgreSQL, transaction-scoped advisory locks on the student's email
   and client (holds serialise per student across tutors). On PostgreSQL one fixed SQL
   text built once per process from the models' fields, its row turned into instances
   with the documented `Model.from_db()`; elsewhere (SQLite) the same read through the
   ORM (select_related + select_for_update(of=...)). Why not the ORM on PostgreSQL too:
   Django compiles that three-join select_related in about 1.0 ms of Python per call,
   twice the 0.5 ms PostgreSQL takes to run it, and it alone kept the hold over its
   4x-the-floor target (bench/README.md). What this relies on, pinned by
   tests/bookings/test_sql.py so that a Django upgrade or a new field type breaks a test
   rather than a hold: psycopg hands every column of these three tables back as the
   ORM would (no field of theirs has a database converter on PostgreSQL), and
   `from_db()` with attnames and values builds the same instance the ORM builds.
2. Everything else a hold checks, in one hand-written UNION: the tutor's active bookings
   and busy times (their own calendars) around the slot, the student's and the client's
   unpaid holds, and the tutor's unpaid holds and upcoming slots. Django builds and
   compiles a UNION of this shape in about a millisecond of Python, more than
   PostgreSQL spends running it, so it is fixed text
   (status constants written in, every request value a parameter) run on a cursor; its
   few columns are turned into Python values here with public functions only.

Both run unchanged on PostgreSQL and SQLite.
"""

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from .availability import Busy
from .models import Offering, Slot, Tutor

# --- the slot, with its tutor locked ------------------------------------------------------

# Holds at different tutors take different tutor locks; these serialise them per
# student and per client so the per-student limits count every hold. Every hold takes
# them in the same order (email, then client), in the statement that locks the tutor.
_ADVISORY = "pg_advisory_xact_lock(hashtextextended(%s, 0))"


def slot_with_tutor(
    slot_id: int, *, lock_tutor: bool = False, lock_keys: Sequence[str] = ()
) -> Slot | None:
    """Slot `slot_id` with its tutor and offerings loaded; None if there is no such slot.

    `lock_tutor` also locks the tutor's row: FOR UPDATE OF on PostgreSQL; on SQLite the
    IMMEDIATE transaction (config/settings/base.py) already holds the write lock and
    serialises every writer, so `lock_keys` (advisory locks, taken in the same
    statement) are needed on PostgreSQL only.
    """
    if connection.vendor == "postgresql":
        return _slot_with_tutor_pg(slot_id, lock_tutor=lock_tutor, lock_keys=lock_keys)
    qs = Slot.objects.select_related("tutor", "remote_offering", "in_person_offering")
    if lock_tutor and connection.features.has_select_for_update_of:
        qs = qs.select_for_update(of=("tutor",))
    if connection.vendor == "postgresql":
        # A fixed SQL text; the keys travel as parameters.
        locks = {f"lock_{i}": RawSQL(_ADVISORY, [k]) for i, k in enumerate(lock_keys) if k}  # noqa: S611
        qs = qs.annotate(**locks)
    try:
        return qs.get(pk=slot_id)
    except Slot.DoesNotExist:
        return None


# The stored fields of each model the slot read loads, in one fixed order: the SQL's
# columns and from_db()'s attnames both come from it.
_LOADED = (Slot, Tutor, Offering, Offering)
_SLOT_SQL: dict[tuple[bool, int], str] = {}


@functools.cache
def stored_fields(model: type[Model]) -> tuple[Any, ...]:
    """A model's fields that are columns of its own table (once per process: the hold
    asks for them on every call)."""
    return tuple(f for f in model._meta.get_fields() if f.concrete and not f.many_to_many)


@functools.cache
def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in stored_fields(model)]


def _slot_sql(*, lock_tutor: bool, keys: int) -> str:
    """The slot read's SQL text, built once per shape (lock or not, how many keys)."""
    shape = (lock_tutor, keys)
    if shape not in _SLOT_SQL:
        columns = ", ".join(
            f'{alias}."{f.column}"'
            for alias, model in zip(("s", "t", "ro", "io"), _LOADED, strict=True)
            for f in stored_fields(model)
        )
        locks = "".join(f", {_ADVISORY}" for _ in range(keys))
        # Built from the models' own table and column names only; every value a parameter.
        _SLOT_SQL[shape] = (
            f"SELECT {columns}{locks}"  # noqa: S608
            f' FROM "{Slot._meta.db_table}" s'
            f' JOIN "{Tutor._meta.db_table}" t ON t."id" = s."tutor_id"'
            f' LEFT JOIN "{Offering._meta.db_table}" ro ON ro."id" = s."remote_offering_id"'
            f' LEFT JOIN "{Offering._meta.db_table}" io ON io."id" = s."in_person_offering_id"'
            ' WHERE s."id" = %s' + (" FOR UPDATE OF t" if lock_tutor else "")
        )
    return _SLOT_SQL[shape]


def _slot_with_tutor_pg(slot_id: int, *, lock_tutor: bool, lock_keys: Sequence[str]) -> Slot | None:
    keys = [k for k in lock_keys if k]
    with connection.cursor() as cursor:
        cursor.execute(_slot_sql(lock_tutor=lock_tutor, keys=len(keys)), [*keys, slot_id])
        row = cursor.fetchone()
    if row is None:
        return None
    loaded: list[Any] = []
    start = 0
    for model in _LOADED:
        names = _attnames(model)
        values = row[start : start + len(names)]
        start += len(names)
        # A LEFT JOIN that found no offering gives NULL for its primary key.
        loaded.append(None if values[0] is None else model.from_db(connection.alias, names, values))
    slot, tutor, remote, in_person = loaded
    slot.tutor = tutor
    slot.remote_offering = remote
    slot.in_person_offering = in_person
    return slot


def _db_value(name: str, value: datetime) -> Any:
    """A datetime as the database stores Slot.`name` (on SQLite: text)."""
    field = Slot._meta.get_field(name)
    return field.get_db_prep_value(value, connection, prepared=False)  # type: ignore[union-attr]


def _aware(value: Any) -> datetime:
    """A datetime column's value as an aware UTC datetime (SQLite returns text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _uuid(value: Any) -> uuid.UUID:
    """A UUID column's value (SQLite returns 32 hex characters)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --- the bookings around a slot, and a student's holds -----------------------------------

# The statuses are written in, not passed: a prepared statement's generic plan can
# use the partial indexes on status (one_active_booking_per_slot, booking_pending_by_*)
# only when it sees the values. They are ACTIVE_STATUSES and PENDING_PAYMENT
# (tests/bookings/test_sql.py checks).
_BUSY_SQL = """
SELECT b.id, b.slot_id, b.tutor_id, b.mode, s."start", s."end", 0
FROM bookings_booking b INNER JOIN bookings_slot s ON s.id = b.slot_id
WHERE s.tutor_id = %s AND s.removed_at IS NULL
  AND s."start" >= COALESCE((
      SELECT u."start" FROM bookings_slot u
      WHERE u.tutor_id = %s AND u.removed_at IS NULL AND u."start" < %s
      ORDER BY u."start" DESC LIMIT 1
  ), %s)
  AND s."start" < %s AND s."end" > %s AND b.status IN ('pending_payment', 'confirmed')
"""
# The tutor's busy times from their own calendars (kind 5), by the busy_by_tutor_end_start
# index: a range on "end", then "start" checked in the index.
_ELSEWHERE_SQL = """
UNION ALL
SELECT NULL, NULL, i.tutor_id, NULL, i."start", i."end", 5
FROM bookings_busyinterval i
WHERE i.tutor_id = %s AND i."end" > %s AND i."start" < %s
"""
# The student's unpaid holds (by email: 1, by client: 2), with their expiry in the
# start column. Expired ones are told apart in Python: with the key alone to look for,
# the database always reads them by the booking_pending_by_email/_client index,
# whatever its statistics say.
_HOLDS_SQL = """
UNION ALL
SELECT b.id, b.slot_id, b.tutor_id, b.mode, b.hold_expires_at, NULL, 1
FROM bookings_booking b
WHERE b.student_email = %s AND b.status = 'pending_payment'
"""
_CLIENT_HOLDS_SQL = """
UNION ALL
SELECT b.id, b.slot_id, b.tutor_id, b.mode, b.hold_expires_at, NULL, 2
FROM bookings_booking b
WHERE b.client_digest = %s AND b.status = 'pending_payment'
"""

# The tutor's unexpired unpaid holds and active slots still to come, counted (in the
# slot_id column) so a hold can check the share of the calendar held unpaid.
_TUTOR_SHARE_SQL = """
UNION ALL
SELECT NULL, count(*), NULL, NULL, NULL, NULL, 3
FROM bookings_booking b
WHERE b.tutor_id = %s AND b.status = 'pending_payment' AND b.hold_expires_at > %s
UNION ALL
SELECT NULL, count(*), NULL, NULL, NULL, NULL, 4
FROM bookings_slot u
WHERE u.tutor_id = %s AND u.removed_at IS NULL AND u."start" > %s
"""


@dataclass(frozen=True)
class Around:
    """What a hold needs to know, read in one query (busy_around)."""

    busy: list[Busy]
    holds_by_email: int = 0
    holds_by_client: int = 0
    # The tutor's unpaid holds and upcoming slots (only when asked for: tutor_share).
    tutor_holds: int = 0
    tutor_slots: int = 0


def busy_around(
    slot: Slot,
    *,
    margin: timedelta,
    now: datetime,
    holds_of: str = "",
    client: str = "",
    tutor_share: bool = False,
) -> Around:
    """The active bookings and busy times of slot's tutor touching [slot.start - margin,
    slot.end + margin), how many unexpired holds the email `holds_of` and the client digest
    `client` have at `now`, and (`tutor_share`) the tutor's unexpired holds and upcoming
    slots. One query.

    Its cost does not grow with the tutor's bookings: it reads the tutor's slots by
    start (the partial index slot_active_by_start) from the last one starting before
    the window. That is enough because one tutor's active slots never overlap (the
    slot_no_overlap constraint), so no earlier one reaches into the window, and a
    booked slot is never withdrawn (services refuse to).
    """
    lo, hi = slot.start - margin, slot.end + margin
    sql = _BUSY_SQL + _ELSEWHERE_SQL
    params = [slot.tutor_id, slot.tutor_id, _db_value("start", lo), _db_value("start", lo)]
    params += [_db_value("start", hi), _db_value("end", lo)]
    params += [slot.tutor_id, _db_value("end", lo), _db_value("start", hi)]
    if holds_of:
        sql += _HOLDS_SQL
        params.append(holds_of)
    if client:
        sql += _CLIENT_HOLDS_SQL
        params.append(client)
    if tutor_share:
        sql += _TUTOR_SHARE_SQL
        at = _db_value("start", now)
        params += [slot.tutor_id, at, slot.tutor_id, at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    busy: list[Busy] = []
    holds = {1: 0, 2: 0}
    counts = {3: 0, 4: 0}
    for booking_id, slot_id, tutor_id, mode, start, end, kind in rows:
        if kind == 0:
            busy.append(
                Busy(_uuid(booking_id), slot_id, tutor_id, mode, _aware(start), _aware(end))
            )
        elif kind == 5:
            busy.append(Busy.elsewhere(tutor_id, _aware(start), _aware(end)))
        elif kind in holds:
            expires = _aware(start)
            holds[kind] += expires is not None and expires > now
        else:
            counts[kind] = slot_id
    return Around(
        busy=busy,
        holds_by_email=holds[1],
        holds_by_client=holds[2],
        tutor_holds=counts[3],
        tutor_slots=counts[4],
    )
