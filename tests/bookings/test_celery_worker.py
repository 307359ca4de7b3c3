"""End to end through a real Celery worker on Redis (not eager mode): a confirmed
payment's commit queues the delivery, the worker sends the email with its invite."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_string
from pathlib import Path
from typing import Any

import icalendar
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bookings import services
from bookings.models import Notification, NotificationKind, NotificationState
from config.celery_app import app as celery_app
from config.observability import request_id_var
from tests.conftest import make_slot

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, mail_dir: Path, process: "subprocess.Popen[str]") -> None:
        self.mail_dir = mail_dir
        self.process = process
        self.output = ""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """A Celery worker process on the test database and the Redis broker."""
    db = connection.settings_dict
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    env.pop("EMAIL_URL", None)
    celery_app.control.purge()  # nothing left over from an earlier run
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    celery_app.conf.task_always_eager = False
    handle = Worker(mail_dir, process)
    try:
        yield handle
    finally:
        celery_app.conf.task_always_eager = True
        stop(handle)
        print(handle.output[-5000:])  # shown when the test fails


def stop(worker: Worker) -> str:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.output, _ = worker.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.output, _ = worker.process.communicate()
    return worker.output


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll an outside process's effect until it shows or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_confirmed_payment_makes_the_worker_send_the_invite(worker: Worker, tutor, remote):
    now = timezone.now()
    request_id = request_id_var.set("req-e2e-0123456789")
    start = (now + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    slot = make_slot(tutor, start, remote=remote)
    booking = services.booking_hold(
        slot_id=slot.pk,
        mode="remote",
        student_name="Sam Student",
        student_email="sam@example.com",
        now=now,
    ).booking
    services.booking_confirm(booking_id=booking.pk, now=now)  # commits → queues the task
    request_id_var.reset(request_id)

    def student_mail_sent() -> bool:
        return Notification.objects.filter(
            booking=booking,
            kind=NotificationKind.CONFIRMED,
            recipient="student",
            state=NotificationState.SENT,
        ).exists()

    assert wait_for(student_mail_sent), "the worker did not send the confirmation"
    assert wait_for(lambda: len(list(worker.mail_dir.glob("*.log"))) >= 1)
    dumps = "".join(p.read_text() for p in worker.mail_dir.glob("*.log"))
    messages = [
        message_from_string(chunk.strip()) for chunk in dumps.split("-" * 79) if chunk.strip()
    ]
    student = [m for m in messages if m["To"] == "sam@example.com"]
    assert len(student) == 1
    (calendar,) = [p for p in student[0].walk() if p.get_content_type() == "text/calendar"]
    assert calendar.get_param("method") == "REQUEST"
    body: Any = calendar.get_payload(decode=True)
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == slot.start
    assert event["UID"] == booking.calendar_uid
    # The id of the request that queued the work is on the worker's log lines.
    sent_lines = [
        line for line in stop(worker).splitlines() if "confirmed to student) sent" in line
    ]
    assert sent_lines and "[req-e2e-0123456789]" in sent_lines[0]
