"""Seed a demo tutor with remote and NYC offerings and a week of rules, once."""

import os
from datetime import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from bookings import services
from bookings.models import Mode, Offering, Tutor

DEMO_USERNAME = "demo-tutor"
# A development-only login printed by `make run`; production never runs this command.
DEMO_PASSWORD = "demo-tutor-password"  # noqa: S105


class Command(BaseCommand):
    help = "Create a demo tutor (only if the database has no tutor yet)."

    def handle(self, *args: object, **options: object) -> None:
        if Tutor.objects.exists():
            self.stdout.write("Tutors exist already: nothing seeded.")
            return
        now = timezone.now()
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=DEMO_USERNAME,
                email="ada@example.com",
                password=os.environ.get("DEMO_TUTOR_PASSWORD", DEMO_PASSWORD),
                is_staff=True,
            )
            # The admin is usable by the tutor: their own rows, with these permissions.
            user.groups.add(services.tutor_group())
            tutor = Tutor.objects.create(
                user=user,
                slug="ada",
                display_name="Ada Park",
                headline="Python tutoring, from first script to production code",
                bio=(
                    "Ten years of Python in industry and teaching. One-to-one sessions online "
                    "or in person in Manhattan: fundamentals, data work, testing, interviews."
                ),
                email="ada@example.com",
                timezone="America/New_York",
            )
            remote = Offering.objects.create(
                tutor=tutor,
                mode=Mode.REMOTE,
                title="Python session (video)",
                duration_minutes=60,
                price_amount=9000,
                currency="usd",
                video_url="https://meet.example.com/ada-python",
            )
            in_person = Offering.objects.create(
                tutor=tutor,
                mode=Mode.IN_PERSON,
                title="Python session (in person)",
                duration_minutes=60,
                price_amount=12000,
                currency="usd",
                place_name="New York Public Library, Stephen A. Schwarzman Building",
                place_address="476 5th Ave, New York, NY 10018",
            )
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[1, 2, 3, 4, 5],
            start_time=time(18, 0),
            end_time=time(21, 0),
            offerings=[remote, in_person],
        )
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[6],
            start_time=time(10, 0),
            end_time=time(13, 0),
            offerings=[remote, in_person],
        )
        services.rule_save(
            tutor=tutor,
            now=now,
            weekdays=[7],
            start_time=time(14, 0),
            end_time=time(16, 0),
            offerings=[remote],
        )
        self.stdout.write(
            self.style.SUCCESS(f"Seeded demo tutor {tutor.display_name} ({tutor.slug}).")
        )
