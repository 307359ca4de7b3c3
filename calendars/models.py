"""The tutor's own calendars (an ICS link or a CalDAV collection) and how their sync goes.

The busy times a source yields are bookings.BusyInterval rows (source = this row's id):
bookings reads them in its one availability decision without importing this app.
"""

from django.db import models
from django.db.models import Q

from bookings.models import Tutor


class SourceKind(models.TextChoices):
    ICS = "ics", "Calendar link (ICS)"
    CALDAV = "caldav", "CalDAV calendar"


class CalendarSource(models.Model):
    tutor = models.ForeignKey(Tutor, on_delete=models.CASCADE, related_name="calendar_sources")
    kind = models.CharField(max_length=8, choices=SourceKind.choices, default=SourceKind.ICS)
    name = models.CharField(max_length=120)
    # Where it comes from, for people to read ("calendar.google.com"). The link itself
    # is a secret (Google's "secret address"), so it is only stored encrypted.
    host = models.CharField(max_length=255)
    # Fernet token (calendars/crypto.py) of {"url", "username", "password"}: never shown.
    secret = models.TextField(editable=False)
    is_active = models.BooleanField(default=True, help_text="Paused sources are not synced.")
    created_at = models.DateTimeField(auto_now_add=True)

    # Conditional GET: what the server said last time, and what its answer held.
    etag = models.CharField(max_length=255, blank=True, default="", editable=False)
    last_modified = models.CharField(max_length=64, blank=True, default="", editable=False)
    content_digest = models.CharField(max_length=64, blank=True, default="", editable=False)
    # The stored busy times cover recurrences up to here; past it, fetch in full again.
    expanded_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The tutor's zone they were read in (all-day and floating events are days and
    # times there): once the tutor moves, the calendar is read again in full.
    read_in_zone = models.CharField(max_length=64, blank=True, default="", editable=False)
    busy_count = models.PositiveIntegerField(default=0, editable=False)

    # The sync's state: when it is next due, who is running it, how it went.
    next_sync_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    # In plain words: "404 from calendar.google.com", "not a calendar".
    last_error = models.CharField(max_length=255, blank=True, default="", editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    # Failing for CALENDAR_GIVE_UP_DAYS: no more automatic syncs until "Sync now" works.
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    stop_notice_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["tutor", "name", "id"]
        indexes = [
            # The beat task's question: which sources are due now.
            models.Index(
                fields=["next_sync_at"],
                name="calendar_source_due",
                condition=Q(is_active=True, stopped_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.host})"
