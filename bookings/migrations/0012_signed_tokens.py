"""Secret links stored once (bookings.tokens): each booking and tutor gets a random key
that its link carries signed; the plain tokens go. Rows that existed before keep the
SHA-256 digest of their old token (renamed *_legacy_digest) so links already emailed
keep working; new rows have none.

Filling the keys runs in batches by primary key, so a large table is not read whole.

SQLite rebuilds bookings_tutor and bookings_booking for these changes, which its
triggers cannot survive (a trigger naming a table being rebuilt breaks the rename, and
a rebuilt table loses its own): the availability-version triggers of 0009 and 0011 are
dropped first and made again at the end, the tutor's with its new columns.
PostgreSQL alters in place and keeps them (its tutor trigger compares whole rows).
"""

import hashlib
import importlib
import secrets

from django.db import migrations, models

import bookings.tokens

BATCH = 2000

_m0009 = importlib.import_module("bookings.migrations.0009_tutor_availability_version")
_m0011 = importlib.import_module("bookings.migrations.0011_busy_interval")
TUTOR_COLUMNS = [
    *(c for c in _m0009.TUTOR_COLUMNS if c not in ("feed_token", "feed_token_digest")),
    "feed_key",
    "feed_legacy_digest",
]
SQLITE_DROP = _m0009._sqlite_backward() + _m0011.SQLITE_BACKWARD
SQLITE_CREATE_OLD = _m0009._sqlite_forward() + _m0011.SQLITE_FORWARD
SQLITE_CREATE_NEW = _m0009._sqlite_forward(TUTOR_COLUMNS) + _m0011.SQLITE_FORWARD


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


def restore_plain_tokens(apps, schema_editor):
    """Going back to 0011: every row needs a plain token and its digest again. The
    plain tokens are gone, so each row gets a new one (links sent since 0012 stop
    working after a rollback; the rolled-back code cannot read signed links anyway)."""
    for model_name, plain, digest in (
        ("Tutor", "feed_token", "feed_token_digest"),
        ("Booking", "manage_token", "manage_token_digest"),
    ):
        model = apps.get_model("bookings", model_name)
        last = 0
        while True:
            pks = list(
                model.objects.filter(pk__gt=last, **{f"{plain}__isnull": True})
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH]
            )
            if not pks:
                break
            rows = []
            for pk in pks:
                token = secrets.token_urlsafe(32)
                rows.append(model(pk=pk, **{plain: token, digest: _sha256(token)}))
            model.objects.bulk_update(rows, [plain, digest])
            last = pks[-1]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def fill_keys(apps, schema_editor):
    for model_name, field in (("Tutor", "feed_key"), ("Booking", "manage_key")):
        model = apps.get_model("bookings", model_name)
        last = 0
        while True:
            pks = list(
                model.objects.filter(pk__gt=last, **{f"{field}__isnull": True})
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH]
            )
            if not pks:
                break
            rows = [model(pk=pk, **{field: secrets.token_urlsafe(16)}) for pk in pks]
            model.objects.bulk_update(rows, [field])
            last = pks[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0011_busy_interval"),
    ]

    operations = [
        migrations.RunPython(_sqlite(SQLITE_DROP), _sqlite(SQLITE_CREATE_OLD)),
        migrations.AddField(
            model_name="tutor",
            name="feed_key",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="booking",
            name="manage_key",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="tutor",
            name="feed_key",
            field=models.CharField(
                default=bookings.tokens.new_key, editable=False, max_length=32, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="booking",
            name="manage_key",
            field=models.CharField(
                default=bookings.tokens.new_key, editable=False, max_length=32, unique=True
            ),
        ),
        # Loosen the old columns first, so that going back can re-add and refill them.
        migrations.AlterField(
            model_name="tutor",
            name="feed_token",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="booking",
            name="manage_token",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="tutor",
            name="feed_token_digest",
            field=models.CharField(editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="booking",
            name="manage_token_digest",
            field=models.CharField(editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(migrations.RunPython.noop, restore_plain_tokens, elidable=False),
        migrations.RemoveField(model_name="tutor", name="feed_token"),
        migrations.RemoveField(model_name="booking", name="manage_token"),
        migrations.RenameField(
            model_name="tutor", old_name="feed_token_digest", new_name="feed_legacy_digest"
        ),
        migrations.RenameField(
            model_name="booking", old_name="manage_token_digest", new_name="manage_legacy_digest"
        ),
        migrations.RunPython(_sqlite(SQLITE_CREATE_NEW), _sqlite(SQLITE_DROP)),
    ]
