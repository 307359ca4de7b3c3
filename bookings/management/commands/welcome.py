"""Printed by `make run` before the processes start: where to go and how to sign in."""

from django.conf import settings
from django.core.management.base import BaseCommand

from bookings.models import Tutor

from .seed_demo import DEMO_PASSWORD, DEMO_USERNAME


class Command(BaseCommand):
    help = "Print the local URLs and the demo tutor's login."

    def handle(self, *args: object, **options: object) -> None:
        base = settings.PUBLIC_BASE_URL
        tutor = Tutor.objects.select_related("user").order_by("id").first()
        lines = [
            "",
            "Tutoring bookings is starting (web, Celery worker and beat; Ctrl-C stops all):",
            f"  Site           {base}/",
            f"  API docs       {base}/api/docs/  (schema: {base}/api/schema/)",
            f"  Admin          {base}/admin/",
        ]
        if tutor is not None:
            lines.append(f"  Tutor page     {base}/t/{tutor.slug}/")
            if tutor.user.username == DEMO_USERNAME:
                lines.append(f"  Demo login     {DEMO_USERNAME} / {DEMO_PASSWORD}")
        lines += ["  Emails         written as files under var/mail/", ""]
        self.stdout.write("\n".join(lines))
