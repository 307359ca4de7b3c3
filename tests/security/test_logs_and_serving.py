"""The service as `make run`, `make dev` and the Docker image start it: real servers.

Each test starts the web process exactly as its launcher does (the `web:` line of the
Procfile `make run` uses, of Procfile.dev, the Dockerfile's CMD) on a throwaway SQLite
database, then checks what a person running it would see: every secret in a URL stays
out of the process's output, and a burst of students holding one slot at once gets one
201 and 409s, never a reset connection or a 500.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from django.test import override_settings

from bookings import tokens

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


def procfile_command(name: str, role: str = "web") -> str:
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith(f"{role}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} has no {role}: line")


def docker_command() -> str:
    (line,) = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("CMD")]
    return shlex.join(json.loads(line.removeprefix("CMD")))


def free_port() -> int:
    """A free port in 18000-18999 (the range this project's checks use)."""
    for port in range(18000 + os.getpid() % 500, 19000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18000-18999")


def base_env(workdir: Path, port: int, **extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "DATABASE_", "CELERY_", "EMAIL_", "STRIPE_", "THROTTLE_", "GUNICORN_")
        )
        and k not in ("CACHE_URL", "WEB_CONCURRENCY", "SENTRY_DSN", "PORT")
    }
    return {
        **keep,
        "PATH": f"{BIN}:{keep.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "CACHE_URL": "locmem://",  # each run its own throttle counters, not var/cache's
        "EMAIL_FILE_PATH": str(workdir / "mail"),
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **extra,
    }


@dataclass
class Server:
    command: str
    env: dict[str, str]
    workdir: Path
    port: int
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    proc: subprocess.Popen[bytes] | None = None
    out: Path = field(init=False)
    err: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = self.workdir / f"{self.port}.out"
        self.err = self.workdir / f"{self.port}.err"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - the launcher's own command line
                ["/bin/sh", "-c", self.command],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.command} exited:\n{self.output()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.command} never answered:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def request(
        self, method: str, path: str, *, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        headers = {"Content-Type": "application/json", **self.headers, **(headers or {})}
        for key, value in headers.items():
            req.add_header(key, value)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the demo tutor, as `make run` prepares it."""
    workdir = tmp_path_factory.mktemp("served")
    env = base_env(workdir, 0, DJANGO_STATIC_ROOT=str(workdir / "static"))
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "seed_demo")
    return workdir


@pytest.fixture
def workdir(database: Path, tmp_path: Path) -> Path:
    """Each test its own copy of the seeded database."""
    for name in ("db.sqlite3",):
        (tmp_path / name).write_bytes((database / name).read_bytes())
    return tmp_path


@pytest.fixture
def serve(database: Path, workdir: Path) -> Iterator[object]:
    servers: list[Server] = []

    def start(command: str, headers: dict[str, str] | None = None, **extra: str) -> Server:
        port = free_port()
        extra = {key: value.replace("$PORT", str(port)) for key, value in extra.items()}
        extra.setdefault("DJANGO_STATIC_ROOT", str(database / "static"))
        server = Server(command, base_env(workdir, port, **extra), workdir, port, headers or {})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def open_slots(server: Server, count: int) -> list[int]:
    day = datetime.now(UTC).date() + timedelta(days=2)
    status, body = server.request(
        "GET", f"/api/slots/?tutor=ada&mode=remote&start={day}&end={day + timedelta(days=20)}"
    )
    assert status == 200, body
    ids = [s["id"] for s in json.loads(body)["results"]]
    assert len(ids) >= count
    return ids[:count]


def hold(server: Server, slot: int, email: str) -> tuple[int, bytes]:
    return server.request(
        "POST",
        "/api/bookings/",
        body={"slot": slot, "mode": "remote", "student_name": "Sam", "student_email": email},
    )


# --- 1. secrets in URLs never reach the output ---------------------------------------------

LAUNCHERS = {
    "make run": lambda: procfile_command("Procfile"),
    "make dev": lambda: procfile_command("Procfile.dev"),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_no_secret_from_a_url_reaches_the_servers_output(serve, workdir, launcher) -> None:
    server = serve(LAUNCHERS[launcher]())
    (slot,) = open_slots(server, 1)
    status, body = hold(server, slot, "sam@example.com")
    assert status == 201, body
    booking = json.loads(body)
    token = booking["manage_url"].rstrip("/").rsplit("/", 1)[-1]
    payment_path = booking["payment_url"].split(str(server.port), 1)[-1]
    payment_id = payment_path.rstrip("/").rsplit("/", 1)[-1]
    with sqlite3.connect(workdir / "db.sqlite3") as db:
        (feed_key,) = db.execute("SELECT feed_key FROM bookings_tutor").fetchone()
    # The feed link is the key signed with the server's secret key: local.py's default.
    with override_settings(SECRET_KEY="local-development-only-not-a-secret"):
        feed = tokens.token_for("feed", feed_key)
    session = "cs_test_a1" + "Zq9" * 20
    reset = "c4x1ab-0123456789abcdef0123456789abcdef"
    secrets = {"manage token": token, "feed token": feed, "checkout": payment_id,
               "session id": session, "reset token": reset}  # fmt: skip

    assert server.request("GET", f"/bookings/{token}/")[0] == 200
    assert server.request("GET", f"/api/bookings/{token}/")[0] == 200
    server.request("GET", f"/api/bookings/{token}/invite.ics")
    assert server.request("GET", f"/calendar/{feed}.ics")[0] == 200
    assert server.request("GET", payment_path)[0] == 200
    server.request("GET", f"/payments/return/{token}/?session_id={session}")
    assert server.request("GET", f"/bookings/{token}x/")[0] == 404  # django.request warns
    assert server.request("GET", f"/api/bookings/{token}x/invite.ics")[0] == 404
    server.request("GET", f"/tutor/?token={token}&session_id={session}")
    server.request("GET", "/t/ada/", headers={"Referer": f"{server.base}/bookings/{token}/"})
    server.request("POST", f"/bookings/{token}/cancel/", body={})  # no CSRF token: 403, logged
    server.request("GET", f"/accounts/reset/MQ/{reset}/")
    time.sleep(1)  # let the processes flush

    output = server.output()
    leaked = {name for name, value in secrets.items() if value in output}
    assert not leaked, f"{launcher} printed {leaked}:\n{output}"
    # The access log is there, redacted, one line per request with its status.
    assert re.search(r"GET /bookings/\[redacted\]/ 200 ", output), output
    assert re.search(r"GET /calendar/\[redacted\]\.ics 200 ", output), output
    assert "GET /bookings/[redacted]/ 404 " in output


def test_the_production_image_logs_no_secret_from_a_url(serve, workdir) -> None:
    token = "Tk" + "x9Y_-" * 8 + "Q"
    production = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "test-" + "k" * 60,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(workdir / "static"),
        "EMAIL_URL": "smtp://127.0.0.1:1",
        "STRIPE_SECRET_KEY": "sk_test_unused",
        "STRIPE_WEBHOOK_SECRET": "whsec_unused",
    }
    # As the image's build does.
    manage({**base_env(workdir, 0), **production}, "collectstatic", "--noinput", "-v", "0")
    server = serve(
        docker_command(),
        **production,
        GUNICORN_BIND="127.0.0.1:$PORT",
        headers={"X-Forwarded-Proto": "https"},  # as the TLS proxy in front sends it
    )
    for path in (f"/bookings/{token}/", f"/api/bookings/{token}/", f"/calendar/{token}.ics",
                 f"/payments/return/{token}/?session_id=cs_live_{token}"):  # fmt: skip
        assert server.request("GET", path)[0] == 404
    server.request("GET", "/t/nobody/", headers={"Referer": f"/bookings/{token}/"})
    time.sleep(1)
    output = server.output()
    assert token not in output, output
    assert '"message": "GET /bookings/[redacted]/ 404 ' in output, output


def test_compose_runs_the_image_with_the_same_gunicorn_configuration() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for text in (compose, dockerfile, (ROOT / "Procfile").read_text()):
        assert "--access-logfile" not in text
    web = yaml.safe_load(compose)["services"]["web"]["command"]
    assert web == ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
    assert docker_command() == "gunicorn -c config/gunicorn.conf.py config.wsgi:application"


# --- 2. `make run` serves real traffic ----------------------------------------------------


@pytest.mark.parametrize("debug", ["True", "False"])
def test_make_run_serves_the_static_files_itself(serve, debug) -> None:
    server = serve(procfile_command("Procfile"), DJANGO_DEBUG=debug)
    status, body = server.request("GET", "/static/bookings/site.css")
    assert status == 200
    assert body
    assert server.request("GET", "/api/docs/")[0] == 200


def test_make_run_answers_fifty_simultaneous_holds_on_one_slot_with_one_201(serve) -> None:
    server = serve(procfile_command("Procfile"), THROTTLE_HOLDS_PER_IP="10000/min")
    (slot,) = open_slots(server, 1)
    students = 50
    start = threading.Barrier(students)

    def one(n: int) -> str:
        start.wait()
        try:
            status, _ = hold(server, slot, f"student{n}@example.com")
        except OSError as exc:
            return type(exc).__name__
        return str(status)

    with ThreadPoolExecutor(students) as pool:
        results = Counter(pool.map(one, range(students)))
    assert results == {"201": 1, "409": students - 1}, (results, server.output()[-3000:])
    with sqlite3.connect(Path(server.env["DATABASE_URL"].removeprefix("sqlite:///"))) as db:
        (active,) = db.execute(
            "SELECT count(*) FROM bookings_booking WHERE slot_id = ? AND status IN "
            "('pending_payment', 'confirmed')",
            (slot,),
        ).fetchone()
    assert active == 1
