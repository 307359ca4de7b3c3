"""A local HTTP server serving calendars the way real providers do, and the settings the
calendar tests run under.

Loopback is what the SSRF guard refuses, so these tests turn
CALENDAR_ALLOW_PRIVATE_ADDRESSES on explicitly; the SSRF tests turn it off again.
"""

import gzip
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bookings import services as booking_services
from bookings.models import Booking, Offering, Slot, Tutor
from calendars import services
from calendars.models import CalendarSource


@dataclass
class Answer:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""  # answer 304 when the request's If-None-Match matches
    hang: bool = False  # accept, then never answer (until the server stops)
    gzip: bool = False
    chunked: bool = False  # no Content-Length: the size is only known by reading
    trickle: float = 0.0  # send the body a byte at a time, this many seconds apart
    endless: bool = False  # after the body, padding lines for ever (chunked)


class FeedServer:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        # The paths whose whole answer was sent (a client that gave up is not in it),
        # and how many requests the server is done with, either way.
        self.finished: list[str] = []
        self.handled = threading.Semaphore(0)
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    self.answer()
                finally:
                    server.handled.release()

            def answer(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = server.answers.get(self.path, Answer(b"not found", 404))
                if answer.hang:
                    server.stopping.wait(30)
                    return
                if answer.etag and self.headers.get("If-None-Match") == answer.etag:
                    self.send_response(304)
                    self.send_header("ETag", answer.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = gzip.compress(answer.body) if answer.gzip else answer.body
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.etag:
                    self.send_header("ETag", answer.etag)
                if answer.gzip:
                    self.send_header("Content-Encoding", "gzip")
                if answer.chunked or answer.endless:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 65536):
                        part = body[i : i + 65536]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    padding = b"X-PAD:" + b"a" * 65000 + b"\r\n"
                    while answer.endless and not server.stopping.is_set():
                        self.wfile.write(f"{len(padding):x}\r\n".encode() + padding + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    server.finished.append(self.path)
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if answer.trickle:
                    for i in range(len(body)):
                        if i and server.stopping.wait(answer.trickle):
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                else:
                    self.wfile.write(body)
                server.finished.append(self.path)

            # A CalDAV client pointed at this server gets the same answers.
            do_PROPFIND = do_REPORT = do_OPTIONS = do_GET

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up early (size limits, timeouts) are expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, body: bytes | str = b"", **kwargs: Any) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.answers[path] = Answer(data, **kwargs)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        return self.serve(path, b"", status=status, headers={"Location": to})

    def wait_handled(self) -> None:
        """Until the server is done with one more request (sent or given up)."""
        assert self.handled.acquire(timeout=30), "the feed server never finished a request"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feeds_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def calendar_settings(settings: Any) -> Any:
    # The feed server and Radicale listen on loopback: allowed here, and only here.
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    settings.CALENDAR_FETCH_TIMEOUT_SECONDS = 2.0
    settings.CALENDAR_MAX_BYTES = 5 * 1024 * 1024
    settings.CALENDAR_SYNC_MINUTES = 10
    settings.CALENDAR_GIVE_UP_DAYS = 7
    return settings


# March 2026 in New York: clocks spring forward on Sunday the 8th.
MARCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Autumn: clocks fall back on Sunday 1 November.
OCTOBER = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)


def evening_rule(tutor: Tutor, offerings: tuple[Offering, Offering], now: datetime) -> None:
    """Tue and Thu 18:00–21:00 New York, 60-minute slots in both modes."""
    booking_services.rule_save(
        tutor=tutor,
        now=now,
        weekdays=[2, 4],
        start_time=time(18, 0),
        end_time=time(21, 0),
        offerings=list(offerings),
    )


def add_source(tutor: Tutor, url: str, now: datetime, **kwargs: Any) -> CalendarSource:
    kwargs.setdefault("name", "Personal")
    return services.source_create(tutor=tutor, url=url, now=now, **kwargs)


def sync(source: CalendarSource, now: datetime) -> services.SyncResult:
    return services.source_sync(source_id=source.pk, now=now, force=True)


def confirm(slot: Slot, now: datetime, *, mode: str = "remote") -> Booking:
    hold = booking_services.booking_hold(
        slot_id=slot.pk,
        mode=mode,
        student_name="Sam Student",
        student_email="sam@example.com",
        now=now,
    )
    return booking_services.booking_confirm(booking_id=hold.booking.pk, now=now)


def slot_at(tutor: Tutor, start: datetime) -> Slot:
    return Slot.objects.get(tutor=tutor, start=start, removed_at__isnull=True)


Sync = Callable[[CalendarSource, datetime], services.SyncResult]
