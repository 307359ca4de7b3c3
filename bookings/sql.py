"""Hand-written SQL for the hold, the one write path students hammer.

Django spends about a millisecond of Python building and compiling each ORM query of a
hold (with select_related, a subquery or a UNION, more): more than PostgreSQL spends
planning and running it. bench/core.py times the whole request against a bare ORM
insert. The hold's two reads are therefore written out here, in SQL that runs unchanged
on PostgreSQL and SQLite. Their rows come back as ordinary model instances and values,
passed through the converters the ORM itself would apply, so callers cannot tell them
from a queryset's results. Everything else, the hold's inserts included, stays in the
ORM. The SQL is fixed text (column lists from the models, status constants written in);
every value a request brings is passed as a parameter.
"""

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.db.models.sql import Query

from .availability import Busy
from .models import Booking, Offering, Slot, Tutor

M = TypeVar("M", bound=Model)


@functools.cache
def _fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(model._meta.concrete_fields)


@functools.cache
def _attnames(model: type[Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in _fields(model))


def _columns(model: type[Model], alias: str) -> str:
    """alias."column" for each concrete field of `model`, in field order."""
    return ", ".join(f'{alias}."{f.column}"' for f in _fields(model))


def _db_value(model: type[Model], name: str, value: Any) -> Any:
    """`value` as the database stores model.name (on SQLite a datetime is text)."""
    field = model._meta.get_field(name)
    return field.get_db_prep_value(value, connection, prepared=False)  # type: ignore[union-attr]


Columns = tuple[tuple[Field, str] | None, ...]


@functools.cache
def _converters(vendor: str, fields: Columns) -> list[tuple[int, list[Any], Any]]:
    """(position, converter functions, column) for each column of `fields` that needs
    converting on this database; None marks a column that is not a field.

    Cached per backend: the functions are the backend's and the fields' own; the
    backend's are bound to the connection that first asked, but read only settings
    (SQLite's time zone), never its database handle, so every thread can share them.
    """
    compiler = connection.ops.compiler("SQLCompiler")(Query(None), connection, connection.alias)
    positions = [i for i, x in enumerate(fields) if x]
    columns: list[Any] = [x[0].get_col(x[1]) for x in fields if x]
    found = compiler.get_converters(columns)
    return [(positions[i], funcs, column) for i, (funcs, column) in found.items()]


def _convert(row: Sequence[Any], fields: Columns) -> list[Any]:
    """`row` as the ORM would return it: each value through the converters of the field
    its column holds (None: a column that is not a field, left as the driver gives it)."""
    values = list(row)
    for at, funcs, column in _converters(connection.vendor, fields):
        for func in funcs:
            values[at] = func(values[at], column, connection)
    return values


def _instance(model: type[M], values: Sequence[Any]) -> M | None:
    """A model instance from converted concrete-field values; None for a missing LEFT
    JOIN partner (its primary key is NULL)."""
    names = _attnames(model)
    if values[names.index(model._meta.pk.attname)] is None:
        return None
    return model.from_db(connection.alias, list(names), list(values))


# --- the slot, with its tutor locked ------------------------------------------------------


_SLOT_MODELS: list[type[Model]] = [Slot, Tutor, Offering, Offering]
_SLOT_FIELDS: Columns = tuple(
    (f, alias) for model, alias in zip(_SLOT_MODELS, "stri", strict=True) for f in _fields(model)
)


@functools.cache
def _slot_sql(lock: bool) -> str:
    sql = (
        f"SELECT {_columns(Slot, 's')}, {_columns(Tutor, 't')}, "  # noqa: S608 - no values
        f"{_columns(Offering, 'r')}, {_columns(Offering, 'i')} "
        "FROM bookings_slot s "
        "INNER JOIN bookings_tutor t ON t.id = s.tutor_id "
        "LEFT JOIN bookings_offering r ON r.id = s.remote_offering_id "
        "LEFT JOIN bookings_offering i ON i.id = s.in_person_offering_id "
        "WHERE s.id = %s"
    )
    return sql + " FOR UPDATE OF t" if lock else sql


def slot_with_tutor(slot_id: int, *, lock_tutor: bool = False) -> Slot | None:
    """Slot `slot_id` with its tutor and offerings loaded, as select_related("tutor",
    "remote_offering", "in_person_offering") would; None if there is no such slot.

    `lock_tutor` also locks the tutor's row: FOR UPDATE OF on PostgreSQL; on SQLite the
    IMMEDIATE transaction (config/settings/base.py) already holds the write lock.
    """
    lock = lock_tutor and connection.features.has_select_for_update_of
    with connection.cursor() as cursor:
        cursor.execute(_slot_sql(lock), [slot_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = _convert(row, _SLOT_FIELDS)
    parts = []
    for model in _SLOT_MODELS:
        width = len(_fields(model))
        parts.append(_instance(model, values[:width]))
        values = values[width:]
    slot, tutor, remote, in_person = parts
    if not isinstance(slot, Slot) or not isinstance(tutor, Tutor):
        return None  # unreachable: an INNER JOIN row has both
    slot.tutor = tutor
    slot.remote_offering = remote  # type: ignore[assignment]
    slot.in_person_offering = in_person  # type: ignore[assignment]
    return slot


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
_BUSY_FIELDS: Columns = (
    (Booking._meta.pk, "b"),
    None,
    None,
    None,
    (Slot._meta.get_field("start"), "s"),
    (Slot._meta.get_field("end"), "s"),
    None,
)
# The student's unpaid holds, with their expiry in the start column. Expired ones are
# told apart in Python: with the email alone to look for, the database always reads
# them by the booking_pending_by_email index, whatever its statistics say.
_HOLDS_SQL = """
UNION ALL
SELECT b.id, b.slot_id, b.tutor_id, b.mode, b.hold_expires_at, NULL, 1
FROM bookings_booking b
WHERE b.student_email = %s AND b.status = 'pending_payment'
"""


def busy_around(
    slot: Slot, *, margin: timedelta, now: datetime, holds_of: str = ""
) -> tuple[list[Busy], int]:
    """The active bookings of slot's tutor touching [slot.start - margin, slot.end +
    margin), and, given `holds_of`, how many unexpired holds that email has at `now`.
    One query.

    Its cost does not grow with the tutor's bookings: it reads the tutor's slots by
    start (the partial index slot_active_by_start) from the last one starting before
    the window. That is enough because one tutor's active slots never overlap (the
    slot_no_overlap constraint), so no earlier one reaches into the window, and a
    booked slot is never withdrawn (services refuse to).
    """
    lo, hi = slot.start - margin, slot.end + margin
    start = functools.partial(_db_value, Slot, "start")
    sql = _BUSY_SQL
    params = [slot.tutor_id, slot.tutor_id, start(lo), start(lo), start(hi)]
    params += [_db_value(Slot, "end", lo)]
    if holds_of:
        sql += _HOLDS_SQL
        params.append(holds_of)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [_convert(row, _BUSY_FIELDS) for row in cursor.fetchall()]
    busy = [Busy(*row[:6]) for row in rows if not row[6]]
    holds = sum(1 for row in rows if row[6] and row[4] > now)
    return busy, holds
