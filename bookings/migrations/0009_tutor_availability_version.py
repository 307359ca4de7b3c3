"""Tutor.availability_version: raised by the database whenever what a student can book
with a tutor changes, so every writer (services, the admin, the sweepers, raw SQL)
raises it, and a slot list can be revalidated by reading one row (bookings/conditional.py).

What raises it, in the same transaction as the change (so it becomes visible together
with the change, never before it):
- a tutor's row: any column but the version itself (notice, buffer, zone, profile...);
- slots, blocked periods and offerings: every insert, update and delete;
- bookings: an insert or delete, and an update of status, slot, mode or tutor (a
  booking's other columns, refunds or invite sequence, change nothing a student sees).

The version never goes backwards: Django's save() writes every column, and an instance
read before a concurrent bump would write back an older number; the tutor's trigger
keeps the larger one (and adds one if the save changed anything else). A number once
handed out in an ETag is never reused for other data.

PostgreSQL: statement-level triggers with transition tables, one UPDATE of the tutors
concerned per statement (a bulk insert of a thousand slots bumps its tutor once).
SQLite: row-level triggers (it has no statement-level ones); writers are serialised
there anyway.

Both: a later migration that rebuilds one of these tables on SQLite (Django does for
many ALTERs there) drops its triggers; tests/bookings/test_conditional.py checks they
are all present after every migration. A new table that changes what can be booked
needs the same three triggers (see TABLES).
"""

from django.db import migrations, models

# table -> on PostgreSQL, the SQL condition (over transition rows o and n) for an updated
# row to count; None: every updated row counts.
TABLES = {
    "bookings_slot": None,
    "bookings_blockedperiod": None,
    "bookings_offering": None,
    "bookings_booking": (
        "(o.status, o.slot_id, o.mode, o.tutor_id) IS DISTINCT FROM "
        "(n.status, n.slot_id, n.mode, n.tutor_id)"
    ),
}
# On SQLite, the same condition for a row-level trigger's WHEN.
SQLITE_BOOKING_CHANGED = (
    "OLD.status IS NOT NEW.status OR OLD.slot_id IS NOT NEW.slot_id "
    "OR OLD.mode IS NOT NEW.mode OR OLD.tutor_id IS NOT NEW.tutor_id"
)
# Every column of bookings_tutor but id and the version (SQLite triggers cannot compare
# whole rows; PostgreSQL compares them as jsonb, so a new column counts there by itself).
TUTOR_COLUMNS = [
    "user_id", "slug", "display_name", "headline", "bio", "email", "timezone", "currency",
    "feed_token", "feed_token_digest", "min_notice_minutes", "travel_buffer_minutes",
    "full_refund_hours", "is_active", "created_at",
]  # fmt: skip

BUMP = "UPDATE bookings_tutor SET availability_version = availability_version + 1"


def _pg_forward() -> list[str]:
    statements = [
        f"""
        CREATE OR REPLACE FUNCTION bookings_tutor_version_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- A bump from the triggers below raises it; anything else (a save() of an
            -- older instance) must neither lower it nor hide a change.
            IF NEW.availability_version <= OLD.availability_version THEN
                NEW.availability_version := OLD.availability_version + CASE
                    WHEN (to_jsonb(NEW) - 'availability_version')
                         IS DISTINCT FROM (to_jsonb(OLD) - 'availability_version')
                    THEN 1 ELSE 0 END;
            END IF;
            RETURN NEW;
        END $$
        """,
        "CREATE TRIGGER availability_version_guard BEFORE UPDATE ON bookings_tutor "
        "FOR EACH ROW EXECUTE FUNCTION bookings_tutor_version_guard()",
        # Inserts and deletes: every row's tutor (transition table "changed_rows").
        f"""
        CREATE OR REPLACE FUNCTION bookings_rows_bump_tutor() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {BUMP} WHERE id IN (SELECT tutor_id FROM changed_rows);
            RETURN NULL;
        END $$
        """,
    ]
    for table, changed in TABLES.items():
        where = changed or "TRUE"
        statements += [
            f"""
            CREATE OR REPLACE FUNCTION {table}_update_bumps_tutor() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                {BUMP} WHERE id IN (
                    SELECT o.tutor_id FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE {where}
                    UNION
                    SELECT n.tutor_id FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE {where}
                );
                RETURN NULL;
            END $$
            """,
            f"CREATE TRIGGER availability_version_insert AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS changed_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION bookings_rows_bump_tutor()",
            f"CREATE TRIGGER availability_version_delete AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS changed_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION bookings_rows_bump_tutor()",
            f"CREATE TRIGGER availability_version_update AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_update_bumps_tutor()",
        ]
    return statements


def _pg_backward() -> list[str]:
    statements = ["DROP TRIGGER IF EXISTS availability_version_guard ON bookings_tutor"]
    for table in TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS availability_version_{op} ON {table}"
            for op in ("insert", "delete", "update")
        ]
        statements.append(f"DROP FUNCTION IF EXISTS {table}_update_bumps_tutor()")
    statements += [
        "DROP FUNCTION IF EXISTS bookings_rows_bump_tutor()",
        "DROP FUNCTION IF EXISTS bookings_tutor_version_guard()",
    ]
    return statements


def _sqlite_forward(tutor_columns: list[str] = TUTOR_COLUMNS) -> list[str]:
    """`tutor_columns`: bookings_tutor's columns at the time (0012 drops and adds some
    and builds these triggers again)."""
    differs = " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in tutor_columns)
    statements = [
        # AFTER, and an UPDATE of the row: SQLite triggers cannot assign NEW. The inner
        # UPDATE does not fire this trigger again (recursive_triggers is off), and would
        # not match its WHEN if it did.
        f"""
        CREATE TRIGGER availability_version_guard AFTER UPDATE ON bookings_tutor
        WHEN NEW.availability_version < OLD.availability_version
          OR (NEW.availability_version = OLD.availability_version AND ({differs}))
        BEGIN
            UPDATE bookings_tutor SET availability_version = OLD.availability_version
                + CASE WHEN {differs} THEN 1 ELSE 0 END
            WHERE id = NEW.id;
        END
        """
    ]
    for table in TABLES:
        when = f" WHEN {SQLITE_BOOKING_CHANGED}" if table == "bookings_booking" else ""
        statements += [
            f"CREATE TRIGGER {table}_version_insert AFTER INSERT ON {table} "
            f"BEGIN {BUMP} WHERE id = NEW.tutor_id; END",
            f"CREATE TRIGGER {table}_version_delete AFTER DELETE ON {table} "
            f"BEGIN {BUMP} WHERE id = OLD.tutor_id; END",
            f"CREATE TRIGGER {table}_version_update AFTER UPDATE ON {table}{when} "
            f"BEGIN {BUMP} WHERE id IN (OLD.tutor_id, NEW.tutor_id); END",
        ]
    return statements


def _sqlite_backward() -> list[str]:
    statements = ["DROP TRIGGER IF EXISTS availability_version_guard"]
    for table in TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_version_{op}" for op in ("insert", "delete", "update")
        ]
    return statements


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("bookings", "0008_input_bounds")]
    # 0011 (busy times) was written against 0008 while this one was; this keeps one leaf
    # in the graph. Drop it once 0011 depends on 0009 or on a 0010 that does.
    run_before = [("bookings", "0011_busy_interval")]

    operations = [
        migrations.AddField(
            model_name="tutor",
            name="availability_version",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(
            _run({"postgresql": _pg_forward(), "sqlite": _sqlite_forward()}),
            _run({"postgresql": _pg_backward(), "sqlite": _sqlite_backward()}),
        ),
    ]
