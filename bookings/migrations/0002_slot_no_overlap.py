"""One tutor's active slots never overlap, enforced by the database itself.

PostgreSQL: an exclusion constraint over the tutor id and the slot's time range
(btree_gist lets the tutor id's equality share a GiST index with the range overlap).
SQLite: triggers that abort an insert or update creating an overlap. Both ignore
withdrawn slots (removed_at set), which keep their rows for the bookings' history.
"""

from django.db import migrations

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    ALTER TABLE bookings_slot ADD CONSTRAINT slot_no_overlap
    EXCLUDE USING gist (tutor_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (removed_at IS NULL)
    """,
]
PG_BACKWARD = ["ALTER TABLE bookings_slot DROP CONSTRAINT IF EXISTS slot_no_overlap"]

_SQLITE_CHECK = """
    WHEN NEW.removed_at IS NULL AND EXISTS (
        SELECT 1 FROM bookings_slot s
        WHERE s.tutor_id = NEW.tutor_id AND s.id != NEW.id AND s.removed_at IS NULL
          AND s."start" < NEW."end" AND s."end" > NEW."start"
    )
    BEGIN SELECT RAISE(ABORT, 'slot_no_overlap: slots of one tutor may not overlap'); END
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER slot_no_overlap_insert BEFORE INSERT ON bookings_slot {_SQLITE_CHECK}",
    'CREATE TRIGGER slot_no_overlap_update BEFORE UPDATE OF "start", "end", removed_at, '
    f"tutor_id ON bookings_slot {_SQLITE_CHECK}",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS slot_no_overlap_insert",
    "DROP TRIGGER IF EXISTS slot_no_overlap_update",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("bookings", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
