from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calendars", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="calendarsource",
            name="read_in_zone",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
    ]
