"""The API's shapes for calendar sources. Addresses and credentials go in, never out."""

from rest_framework import serializers

from bookings.api.fields import NameField, TextField

from . import selectors
from .models import CalendarSource, SourceKind

URL_MAX_LENGTH = 2000
SECRET_MAX_LENGTH = 500


class CalendarSourceSerializer(serializers.ModelSerializer):
    """A source as its tutor sees it: where it comes from (host only) and how its sync
    goes. The address (a secret for Google's private links), user name and password are
    stored encrypted and never returned."""

    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = CalendarSource
        fields = [
            "id",
            "name",
            "kind",
            "host",
            "is_active",
            "has_credentials",
            "busy_count",
            "last_success_at",
            "last_error",
            "last_error_at",
            "last_attempt_at",
            "failures",
            "next_sync_at",
            "stopped_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_has_credentials(self, obj: CalendarSource) -> bool:
        """Whether a user name or password is stored (never what they are)."""
        return selectors.has_credentials(obj)


class CalendarSourceCreateSerializer(serializers.Serializer):
    name = NameField()
    kind = serializers.ChoiceField(choices=SourceKind.choices, default=SourceKind.ICS)
    url = TextField(
        max_length=URL_MAX_LENGTH,
        write_only=True,
        help_text="https://, http:// or webcal:// (an ICS link, or a CalDAV calendar's "
        "collection URL). Stored encrypted; never returned.",
    )
    username = TextField(
        max_length=255, required=False, allow_blank=True, default="", write_only=True
    )
    password = serializers.CharField(
        max_length=SECRET_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        write_only=True,
        help_text="An app password for CalDAV. Stored encrypted; never returned.",
    )


class CalendarSourceUpdateSerializer(serializers.Serializer):
    """Only what is sent changes; left-out credentials are kept."""

    name = NameField(required=False)
    is_active = serializers.BooleanField(required=False)
    url = TextField(max_length=URL_MAX_LENGTH, required=False, write_only=True)
    username = TextField(max_length=255, required=False, allow_blank=True, write_only=True)
    password = serializers.CharField(
        max_length=SECRET_MAX_LENGTH,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        write_only=True,
    )
