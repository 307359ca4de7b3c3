"""Busy times from the tutor's own calendars (written by the calendars app), and the
email that warns the tutor when one lands on a confirmed session.

Busy times change which slots are open, so their table gets migration 0009's three
availability-version triggers: every insert, update and delete raises the tutor's
Tutor.availability_version in the same transaction (PostgreSQL: once per statement, so
a sync replacing a calendar's rows bumps it twice; SQLite: once per row).
"""

import django.db.models.deletion
from django.db import migrations, models

BUMP = "UPDATE bookings_tutor SET availability_version = availability_version + 1"

PG_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION bookings_busyinterval_update_bumps_tutor() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        {BUMP} WHERE id IN (
            SELECT o.tutor_id FROM old_rows o JOIN new_rows n ON n.id = o.id
            UNION
            SELECT n.tutor_id FROM old_rows o JOIN new_rows n ON n.id = o.id
        );
        RETURN NULL;
    END $$
    """,
    # bookings_rows_bump_tutor() is migration 0009's: the tutors of "changed_rows".
    "CREATE TRIGGER availability_version_insert AFTER INSERT ON bookings_busyinterval "
    "REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION bookings_rows_bump_tutor()",
    "CREATE TRIGGER availability_version_delete AFTER DELETE ON bookings_busyinterval "
    "REFERENCING OLD TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION bookings_rows_bump_tutor()",
    "CREATE TRIGGER availability_version_update AFTER UPDATE ON bookings_busyinterval "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION bookings_busyinterval_update_bumps_tutor()",
]
PG_BACKWARD = [
    *(
        f"DROP TRIGGER IF EXISTS availability_version_{op} ON bookings_busyinterval"
        for op in ("insert", "delete", "update")
    ),
    "DROP FUNCTION IF EXISTS bookings_busyinterval_update_bumps_tutor()",
]
SQLITE_FORWARD = [
    "CREATE TRIGGER bookings_busyinterval_version_insert AFTER INSERT ON "
    f"bookings_busyinterval BEGIN {BUMP} WHERE id = NEW.tutor_id; END",
    "CREATE TRIGGER bookings_busyinterval_version_delete AFTER DELETE ON "
    f"bookings_busyinterval BEGIN {BUMP} WHERE id = OLD.tutor_id; END",
    "CREATE TRIGGER bookings_busyinterval_version_update AFTER UPDATE ON "
    f"bookings_busyinterval BEGIN {BUMP} WHERE id IN (OLD.tutor_id, NEW.tutor_id); END",
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS bookings_busyinterval_version_{op}"
    for op in ("insert", "delete", "update")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0009_tutor_availability_version"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="kind",
            field=models.CharField(
                choices=[
                    ("confirmed", "Booking confirmed"),
                    ("cancelled", "Booking cancelled"),
                    ("rescheduled", "Booking rescheduled"),
                    ("reminder", "Reminder"),
                    ("hold_expired", "Hold expired"),
                    ("late_payment_refunded", "Late payment refunded"),
                    ("payment_refused", "Payment refused and refunded"),
                    ("busy_conflict", "Busy time over a booking"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="BusyInterval",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("source", models.PositiveBigIntegerField()),
                ("start", models.DateTimeField()),
                ("end", models.DateTimeField()),
                (
                    "tutor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="busy_intervals",
                        to="bookings.tutor",
                    ),
                ),
            ],
            options={
                "ordering": ["start"],
                "indexes": [
                    models.Index(fields=["tutor", "end", "start"], name="busy_by_tutor_end_start"),
                    models.Index(fields=["source"], name="busy_by_source"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("end__gt", models.F("start"))),
                        name="busy_interval_ends_after_start",
                    )
                ],
            },
        ),
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
