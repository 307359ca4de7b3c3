"""Identities that survive a domain change and a database reset: each booking stores
its invite's UID (Booking.calendar_uid) and each outbox row its email's Message-ID
(Notification.message_id), both "<random UUID>@CALENDAR_UID_DOMAIN" for new rows.

Rows that exist now keep the identity they were built with until now, computed the old
way from PUBLIC_BASE_URL's host: the UID "booking-<id>@<host>" that the student's and
the tutor's calendars already hold (so an update or a cancellation still finds the
event), and the Message-ID "notification-<row>.<booking>@<host>" (so a row sent again
after a crash still looks like the same message). Run this migration with the
PUBLIC_BASE_URL those invites were sent under.

Filling runs in batches by primary key, so a large table is not read whole. Like 0012,
SQLite rebuilds bookings_booking here, which its triggers cannot survive: 0012's
availability-version triggers are dropped first and made again at the end.
"""

import importlib
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations, models

import bookings.models

BATCH = 2000

_m0012 = importlib.import_module("bookings.migrations.0012_signed_tokens")


_sqlite = _m0012._sqlite  # the trigger statements, on SQLite only


def _old_uid_host() -> str:
    """bookings.ics before this migration: the site's host name, as it was."""
    return urlsplit(settings.PUBLIC_BASE_URL).hostname or "tutoring"


def _old_message_id_host() -> str:
    """bookings.notifications before this migration: the host if it is a dot-atom."""
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or ""
    return host if re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", host) else "localhost"


def _fill(model, field, value_of, *, fields=("pk",)):
    last = None
    while True:
        rows = model.objects.filter(**{f"{field}__isnull": True}).order_by("pk")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows.values_list(*fields)[:BATCH])
        if not batch:
            break
        model.objects.bulk_update(
            [model(pk=row[0], **{field: value_of(*row)}) for row in batch], [field]
        )
        last = batch[-1][0]


def keep_old_identities(apps, schema_editor):
    uid_host, mid_host = _old_uid_host(), _old_message_id_host()
    _fill(
        apps.get_model("bookings", "Booking"),
        "calendar_uid",
        lambda pk: f"booking-{pk}@{uid_host}",
    )
    _fill(
        apps.get_model("bookings", "Notification"),
        "message_id",
        lambda pk, booking_id: f"notification-{pk}.{booking_id}@{mid_host}",
        fields=("pk", "booking_id"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0012_signed_tokens"),
    ]

    operations = [
        migrations.RunPython(_sqlite(_m0012.SQLITE_DROP), _sqlite(_m0012.SQLITE_CREATE_NEW)),
        migrations.AddField(
            model_name="booking",
            name="calendar_uid",
            field=models.CharField(editable=False, max_length=255, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="message_id",
            field=models.CharField(editable=False, max_length=255, null=True),
        ),
        migrations.RunPython(keep_old_identities, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="booking",
            name="calendar_uid",
            field=models.CharField(
                default=bookings.models.new_calendar_uid,
                editable=False,
                max_length=255,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="message_id",
            field=models.CharField(
                default=bookings.models.new_message_id,
                editable=False,
                max_length=255,
                unique=True,
            ),
        ),
        migrations.RunPython(_sqlite(_m0012.SQLITE_CREATE_NEW), _sqlite(_m0012.SQLITE_DROP)),
    ]
