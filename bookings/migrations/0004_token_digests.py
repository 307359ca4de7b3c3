"""Secrets are looked up by their SHA-256 digest (see models.token_digest)."""

import hashlib

from django.db import migrations, models


def fill_digests(apps, schema_editor):
    def digest(token):
        return hashlib.sha256(token.encode()).hexdigest()

    Tutor = apps.get_model("bookings", "Tutor")
    Booking = apps.get_model("bookings", "Booking")
    for tutor in Tutor.objects.only("pk", "feed_token"):
        Tutor.objects.filter(pk=tutor.pk).update(feed_token_digest=digest(tutor.feed_token))
    for booking in Booking.objects.only("pk", "manage_token").iterator():
        Booking.objects.filter(pk=booking.pk).update(
            manage_token_digest=digest(booking.manage_token)
        )


class Migration(migrations.Migration):
    dependencies = [("bookings", "0003_offering_min_price")]

    operations = [
        migrations.AddField(
            model_name="tutor",
            name="feed_token_digest",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="booking",
            name="manage_token_digest",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="tutor",
            name="feed_token_digest",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="booking",
            name="manage_token_digest",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
    ]
