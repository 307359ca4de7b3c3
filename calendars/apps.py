from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "calendars"
    verbose_name = "Tutors' own calendars"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy check
