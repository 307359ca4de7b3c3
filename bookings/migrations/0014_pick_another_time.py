"""A new outbox kind: the tutor asks the student to pick another time (choices only:
no change to the table)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0013_message_ids"),
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
                    ("pick_another_time", "Tutor asks to pick another time"),
                ],
                max_length=32,
            ),
        ),
    ]
