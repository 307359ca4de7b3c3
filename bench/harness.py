"""The real stack on loopback, for bench/load.py and bench/faults.py.

Processes (each in its own session, so it and its children end together):
- gunicorn `config.wsgi:application` on 127.0.0.1:<free port>, settings bench.settings_load
  (config.settings.local, DEBUG off, the floor views of bench/floor_urls.py routed too);
- one Celery worker (`celery -A config worker --concurrency=2`);
- the SMTP sink and the fake Stripe of bench/sidecars.py;
- for faults.py, a private redis-server and (by default) a private PostgreSQL cluster.

The driver process sets the same environment and runs Django itself, to seed, to read
the outbox and to run the sweep. Nothing binds anything but 127.0.0.1, every wait here
is bounded, and Stack.close() ends every process this module started (by its own pid /
process group), even after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from bench import core  # the bench database helpers and the tutor it seeds

if TYPE_CHECKING:
    from bookings.models import Offering, Tutor

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
SETTINGS_MODULE = "bench.settings_load"
ZONE_NAME = core.ZONE_NAME
ACTIVE = ("pending_payment", "confirmed")

T = TypeVar("T")


# --- small things -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(
    what: str, check: Callable[[], T | None], *, timeout: float, interval: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; SystemExit after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the thing is not up yet
            last_error = exc
        if time.monotonic() > deadline:
            raise SystemExit(f"Timed out after {timeout:.0f} s waiting for {what} ({last_error}).")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def say(message: str) -> None:
    print(message, flush=True)


def print_pairs(title: str, pairs: Iterable[tuple[str, str]]) -> None:
    say(title)
    for key, value in pairs:
        say(f"  {key:<20} {value}")
    say("")


# --- processes ----------------------------------------------------------------------------


class Proc:
    """A child process in its own session; its log goes to a file in the run's folder."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT
    ) -> None:
        self.name, self.argv, self.env, self.log, self.cwd = name, argv, env, log, cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%H:%M:%S')} start {self.name}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        # Only our own session: start_new_session made the child its leader.
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a crash, not a shutdown)."""
        if self.popen is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL whatever is left of its session."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if not self.alive:
            raise SystemExit(f"{self.name} exited early; its log ends:\n{self.tail()}")

    def alive_and(self, ready: Callable[[], bool]) -> bool:
        """For wait_for: stop at once if the process died, else whether it is ready."""
        self.check_alive()
        return ready()


# --- the SMTP sink ------------------------------------------------------------------------

# Rows made before migration 0013 keep the Message-ID they were built with, which named
# the row; newer rows carry a random one (Notification.message_id), found by lookup.
LEGACY_MESSAGE_ID = re.compile(r"<notification-(\d+)[.@]")


@dataclass
class SinkEvent:
    ev: str  # data | accepted | refused | aborted
    notification: int | None  # the outbox row whose Message-ID the message carried
    t: float
    code: int = 0


class SmtpSink:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = workdir / "smtp-sink.jsonl"
        self.mode_file = workdir / "smtp-sink-mode.json"
        self.log.touch()
        self.rows_by_mid: dict[str, int] = {}  # Message-ID (no brackets) -> outbox row
        self.set_mode()
        ready = workdir / "smtp-sink.ready"
        self.proc = Proc(
            "smtp sink",
            [sys.executable, str(BENCH / "sidecars.py"), "smtp", "--port", str(self.port),
             "--log", str(self.log), "--mode", str(self.mode_file), "--ready", str(ready)],
            env=env,
            log=workdir / "smtp-sink.log",
        )  # fmt: skip
        self.proc.start()
        wait_for("the SMTP sink", lambda: self.proc.alive_and(ready.exists), timeout=20)

    def set_mode(self, *, delay: float = 0, reply: str = "250", quit_delay: float = 0) -> None:
        tmp = self.mode_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"delay": delay, "reply": reply, "quit_delay": quit_delay}))
        tmp.replace(self.mode_file)

    def events(self) -> list[SinkEvent]:
        raws = []
        for line in self.log.read_text().splitlines():
            try:
                raws.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        self._learn({raw.get("mid", "").strip("<>") for raw in raws})
        out: list[SinkEvent] = []
        for raw in raws:
            mid = raw.get("mid", "")
            row = self.rows_by_mid.get(mid.strip("<>"))
            if row is None and (match := LEGACY_MESSAGE_ID.search(mid)):
                row = int(match.group(1))
            out.append(SinkEvent(raw["ev"], row, raw["t"], raw.get("code", 0)))
        return out

    def _learn(self, mids: set[str]) -> None:
        """Which outbox row each Message-ID not seen before belongs to (one query)."""
        from bookings.models import Notification

        unknown = [mid for mid in mids if mid and mid not in self.rows_by_mid]
        if unknown:
            rows = Notification.objects.filter(message_id__in=unknown)
            self.rows_by_mid.update(rows.values_list("message_id", "pk"))

    def count(self, ev: str, ids: Iterable[int] | None = None) -> Counter[int | None]:
        wanted = set(ids) if ids is not None else None
        return Counter(
            e.notification
            for e in self.events()
            if e.ev == ev and (wanted is None or e.notification in wanted)
        )


# --- the fake Stripe ------------------------------------------------------------------------


class FakeStripeProc:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        ready = workdir / "fake-stripe.ready"
        self.proc = Proc(
            "fake stripe",
            [sys.executable, str(BENCH / "sidecars.py"), "stripe", "--ready", str(ready)],
            env=env,
            log=workdir / "fake-stripe.log",
        )
        self.proc.start()
        wait_for("the fake Stripe", lambda: self.proc.alive_and(ready.exists), timeout=20)
        info = json.loads(ready.read_text())
        self.url: str = info["url"]
        self.control: str = info["control"]

    def _call(self, method: str, path: str) -> Any:
        import requests

        response = requests.request(method, self.control + path, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"fake stripe {path}: {response.status_code} {response.text}")
        return response.json()

    def complete(self, session_id: str) -> dict[str, Any]:
        """The student paid on Stripe's page: the session is complete and paid."""
        session: dict[str, Any] = self._call("POST", f"/complete/{session_id}")
        return session

    def fail(self, status: int, *, times: int) -> None:
        self._call("POST", f"/fail?status={status}&times={times}")

    def delay(self, seconds: float, *, times: int) -> None:
        self._call("POST", f"/delay?seconds={seconds}&times={times}")

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/stats")
        return stats


def student_ip(n: int) -> str:
    """The n-th student's address for X-Forwarded-For (only ever a header value).

    Students reach the service from their own addresses; the bench's all come from
    127.0.0.1, so the stack runs with PROXY_COUNT=1 (as behind a reverse proxy) and each
    student names theirs, from the loopback range, so the per-IP throttles see many
    students rather than one very busy one.
    """
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


def session_id_from(payment_url: str) -> str:
    """Stripe Checkout's URL ends in the session id (the fake builds it the same way)."""
    return urlsplit(payment_url).path.rstrip("/").rsplit("/", 1)[-1]


def signed_event(
    session: dict[str, Any], secret: str, kind: str = "checkout.session.completed"
) -> tuple[bytes, str]:
    """(payload, Stripe-Signature) of an event whose data.object is `session`, as Stripe
    sends it: the real event envelope and signing scheme, from tests/payments/fake_stripe."""
    from tests.payments.fake_stripe import FakeStripe, sign

    payload = json.dumps(FakeStripe.event(kind, session)).encode()
    return payload, sign(payload, secret)


# --- Redis and PostgreSQL we run ourselves ------------------------------------------------------


class RedisServer:
    """A private redis-server on a spare port: faults.py stops and starts it at will."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.env = env
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = Proc(
            "redis-server",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir)],
            env=self.env,
            log=self.workdir / "redis.log",
        ).start()  # fmt: skip
        proc = self.proc
        wait_for("redis-server", lambda: proc.alive_and(lambda: port_open(self.port)), timeout=20)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.stop(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: a hung server. Connections are still accepted, nothing is answered."""
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGCONT)


def _pg_bindir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise SystemExit("No PostgreSQL server binaries under /usr/lib/postgresql.")
    return versions[-1]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a spare port, owned by the postgres user.

    faults.py restarts its server in the PostgreSQL scenario; doing that to the shared
    cluster on 5432 would also break whatever else is using it at that moment.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.bindir = _pg_bindir()
        self.data = Path(tempfile.mkdtemp(prefix="pg-bench-", dir="/tmp"))
        shutil.chown(self.data, "postgres", "postgres")
        self.log = self.data / "postgres.log"  # the postgres user cannot write to workdir
        self.started = False

    def _pg(self, *argv: str, timeout: float = 60) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:2])} failed:\n{done.stdout}\n{done.stderr}")

    def init_and_start(self) -> None:
        self._pg(str(self.bindir / "initdb"), "-D", str(self.data / "data"), "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._pg(str(self.bindir / "pg_ctl"), "-D", str(self.data / "data"), "-l", str(self.log),
                 "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        self.started = True

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        # -l again: without it the new postmaster would hold our output pipes open.
        self._pg(str(self.bindir / "pg_ctl"), "-D", str(self.data / "data"), "-l", str(self.log),
                 "-w", "-t", "60", "-m", "fast", "restart")  # fmt: skip

    def close(self) -> None:
        if self.started:
            with contextlib.suppress(SystemExit, subprocess.TimeoutExpired):
                self._pg(str(self.bindir / "pg_ctl"), "-D", str(self.data / "data"), "-w",
                         "-t", "30", "-m", "immediate", "stop")  # fmt: skip
            self.started = False
        shutil.rmtree(self.data, ignore_errors=True)


def restart_shared_cluster() -> None:
    """The shared cluster, exactly as an operator would restart it."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=120,
    )


# --- the bench database and Django in the driver ------------------------------------------------


def create_database(url: str) -> None:
    core.recreate_database(url)  # refuses any name without "bench"


def drop_database(url: str) -> None:
    with contextlib.suppress(Exception):  # Django may not be set up (early failure)
        from django.db import connections

        connections.close_all()
    core._drop_and_maybe_create(url, create=False)


@dataclass
class StackConfig:
    database_url: str
    broker_url: str
    web_port: int
    smtp_port: int
    stripe_url: str
    webhook_secret: str = field(default_factory=lambda: "whsec_bench_" + secrets.token_hex(16))
    secret_key: str = field(default_factory=lambda: "bench-" + secrets.token_urlsafe(40))
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "CELERY_", "STRIPE_", "EMAIL_", "DATABASE_"))
        }
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
                "DJANGO_DEBUG": "False",
                "DJANGO_SECRET_KEY": self.secret_key,
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": self.broker_url,
                "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp_port}",
                "STRIPE_SECRET_KEY": "sk_test_bench",
                "STRIPE_API_BASE": self.stripe_url,
                "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
                "PUBLIC_BASE_URL": self.base_url,
                "LOG_LEVEL": "WARNING",
                "PROXY_COUNT": "1",  # see student_ip()
            }
        )
        env.update(self.extra)
        return env


def setup_django(env: dict[str, str]) -> None:
    """This process becomes one more client of the same database, with the same settings."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DEBUG or settings.PAYMENTS_SIMULATED or not settings.STRIPE_SECRET_KEY:
        raise SystemExit("The bench settings must run with DEBUG off and Stripe configured.")
    if not settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        raise SystemExit(f"EMAIL_URL did not select SMTP ({settings.EMAIL_BACKEND}).")
    call_command("migrate", interactive=False, verbosity=0)


def seed_tutor() -> tuple[Tutor, Offering, Offering]:
    """bench/core.py's tutor: remote + in-person offerings, weekday and Saturday rules,
    materialised over SLOT_HORIZON_WEEKS through bookings.services.rule_save."""
    from django.utils import timezone

    tutor, remote, in_person, _rules = core._seed_tutor(timezone.now())
    return tutor, remote, in_person


def open_slot_ids(tutor: Tutor, *, count: int, skip_days: int = 2) -> list[int]:
    """Open slots offering "remote", starting at least `skip_days` from now, in order.

    Remote bookings may sit next to each other (only in-person ones need the travel
    buffer), so a run that books only remote can use them all.
    """
    from datetime import timedelta

    from django.utils import timezone

    from bookings import selectors

    now = timezone.now()
    items = selectors.open_slots(
        start=now + timedelta(days=skip_days), end=now + timedelta(days=60), now=now, tutor=tutor
    )
    picked = [item.slot.pk for item in items if "remote" in item.offerings][:count]
    if len(picked) < count:
        raise SystemExit(f"Only {len(picked)} open slots to book, {count} wanted.")
    return picked


# --- gunicorn and Celery ----------------------------------------------------------------------

# No path: manage links carry their secret in it.
ACCESS_LOG_FORMAT = "%(m)s %(s)s %(D)s %({x-bench-phase}i)s %({x-bench-label}i)s"


class Stack:
    """Everything one run starts; close() ends all of it, in reverse order.

    One or more gunicorn instances (each its own port, all on the same database, Redis
    and settings) and one or more Celery workers: `web` and `worker` are the first of
    each, `webs` and `workers` all of them.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.cleanups: list[Callable[[], None]] = []
        self.webs: list[Proc] = []
        self.web_ports: list[int] = []
        self.workers: list[Proc] = []
        self.worker_names: list[str] = []
        self.worker_argvs: list[list[str]] = []
        self.worker: Proc | None = None
        self.worker_name = ""
        self.worker_argv: list[str] = []

    @property
    def web(self) -> Proc | None:
        return self.webs[0] if self.webs else None

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def start_web(
        self,
        cfg: StackConfig,
        *,
        workers: int,
        worker_class: str,
        threads: int,
        port: int | None = None,
    ) -> Proc:
        """A gunicorn instance on `port` (default cfg.web_port). Every instance writes
        the same access log (appends of whole lines), each its own error log."""
        port = cfg.web_port if port is None else port
        n = len(self.webs) + 1
        argv = [str(BIN / "gunicorn"), "config.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--worker-class", worker_class, "--threads", str(threads),
                "--timeout", "30", "--graceful-timeout", "10", "--backlog", "2048",
                "--chdir", str(ROOT), "--access-logfile", str(self.workdir / "access.log"),
                "--access-logformat", ACCESS_LOG_FORMAT]  # fmt: skip
        log = self.workdir / ("web.log" if n == 1 else f"web-{n}.log")
        web = self.add(
            Proc("gunicorn" if n == 1 else f"gunicorn {n}", argv, env=cfg.env(), log=log)
        )
        self.webs.append(web)
        self.web_ports.append(port)
        web.start()
        self.wait_web(cfg, web=web, port=port)
        return web

    def wait_web(
        self, cfg: StackConfig, *, web: Proc | None = None, port: int | None = None
    ) -> None:
        import requests

        web = web or self.web
        assert web is not None
        base = f"http://127.0.0.1:{port}" if port else cfg.base_url

        def up() -> bool:
            web.check_alive()
            status = requests.get(base + "/api/tutors/", timeout=5).status_code
            if status != 200:
                last = (server_errors(web.log) or [""])[-1]
                raise RuntimeError(f"GET /api/tutors/ → {status}; {last}")
            return True

        wait_for(web.name, up, timeout=60, interval=0.25)

    def start_worker(self, cfg: StackConfig, *, tag: str) -> Proc:
        """A Celery worker (call again for more: each gets its own name and log)."""
        n = len(self.workers) + 1
        name = f"bench-{tag}{'' if n == 1 else n}-{os.getpid()}@localhost"
        argv = [str(BIN / "celery"), "-A", "config", "worker", "--concurrency=2",
                "--loglevel=WARNING", "-n", name]  # fmt: skip
        if n == 1:
            self.worker_name, self.worker_argv = name, argv
        self.worker_names.append(name)
        self.worker_argvs.append(argv)
        return self._launch_worker(cfg, n - 1)

    def _launch_worker(self, cfg: StackConfig, index: int) -> Proc:
        log = self.workdir / ("worker.log" if index == 0 else f"worker-{index + 1}.log")
        proc = self.add(Proc("celery worker", self.worker_argvs[index], env=cfg.env(), log=log))
        if index < len(self.workers):
            self.workers[index] = proc
        else:
            self.workers.append(proc)
        if index == 0:
            self.worker = proc
        proc.start()
        self.wait_worker(proc, self.worker_names[index])
        return proc

    def wait_worker(self, worker: Proc | None = None, name: str = "") -> None:
        from config.celery_app import app

        worker = worker or self.worker
        name = name or self.worker_name
        assert worker is not None

        def pong() -> bool:
            worker.check_alive()
            return bool(app.control.ping(destination=[name], timeout=1.0))

        wait_for("the Celery worker", pong, timeout=60, interval=0.5)

    def restart_worker(self, cfg: StackConfig) -> Proc:
        """A warm shutdown (SIGTERM) of the (first) worker, then a new one in its place."""
        if self.worker is not None:
            self.worker.stop()
        return self._launch_worker(cfg, 0)

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except BaseException as exc:  # keep tearing down the rest
                say(f"  teardown step failed: {exc!r}")


@contextlib.contextmanager
def terminating_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run through the same finally blocks as Ctrl-C."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


# --- what must hold afterwards ------------------------------------------------------------------


def double_bookings() -> dict[str, list[tuple[Any, ...]]]:
    """Violations of the booking invariants, straight from SQL (empty lists = none)."""
    from django.db import connection

    queries = {
        "slots with two active bookings": """
            SELECT slot_id, count(*) FROM bookings_booking
            WHERE status = ANY(%(active)s) GROUP BY slot_id HAVING count(*) > 1""",
        "overlapping active bookings of one tutor": """
            SELECT a.id, b.id FROM bookings_booking a
            JOIN bookings_slot sa ON sa.id = a.slot_id
            JOIN bookings_booking b ON b.tutor_id = a.tutor_id AND a.id < b.id
            JOIN bookings_slot sb ON sb.id = b.slot_id
            WHERE a.status = ANY(%(active)s) AND b.status = ANY(%(active)s)
              AND sa.start < sb."end" AND sb.start < sa."end" """,
        "active bookings inside an in-person travel buffer": """
            SELECT a.id, b.id FROM bookings_booking a
            JOIN bookings_slot sa ON sa.id = a.slot_id
            JOIN bookings_tutor t ON t.id = a.tutor_id
            JOIN bookings_booking b ON b.tutor_id = a.tutor_id AND b.id <> a.id
            JOIN bookings_slot sb ON sb.id = b.slot_id
            WHERE a.mode = 'in_person'
              AND a.status = ANY(%(active)s) AND b.status = ANY(%(active)s)
              AND sb.start < sa."end" + t.travel_buffer_minutes * interval '1 minute'
              AND sb."end" > sa.start - t.travel_buffer_minutes * interval '1 minute'""",
    }
    found: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        for name, query in queries.items():
            cursor.execute(query, {"active": list(ACTIVE)})
            found[name] = list(cursor.fetchall())
    return found


@dataclass
class MailCheck:
    """The outbox against what the sink accepted, message by message (by Message-ID)."""

    rows_by_state: Counter[str]
    due: int  # rows due by now
    due_not_sent: list[tuple[int, str, str]]  # (id, state, last_error)
    sent: int
    lost: list[int]  # sent rows the sink never accepted
    duplicated: dict[int, int]  # id -> copies accepted (> 1)
    unowed: list[int]  # accepted messages whose row is not "sent"
    aborted: int  # copies the sink saw but did not take (client gone mid-DATA)
    refused: int

    @property
    def ok(self) -> bool:
        return not (self.due_not_sent or self.lost or self.duplicated or self.unowed)

    def lines(self) -> list[tuple[str, str]]:
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.rows_by_state.items()))
        return [
            ("outbox rows", states or "none"),
            ("due by now", f"{self.due} ({len(self.due_not_sent)} of them not sent)"),
            ("sent rows", str(self.sent)),
            ("lost", f"{len(self.lost)} (sent rows the sink never accepted) {self.lost[:10]}"),
            (
                "duplicated",
                f"{len(self.duplicated)} (Message-IDs accepted twice or more) "
                f"{dict(list(self.duplicated.items())[:10])}",
            ),
            (
                "unowed",
                f"{len(self.unowed)} (accepted, but the row is not sent) {self.unowed[:10]}",
            ),
            ("sink also saw", f"{self.aborted} aborted, {self.refused} refused deliveries"),
        ]


def check_mail(
    sink: SmtpSink, *, now: datetime, booking_ids: Iterable[Any] | None = None
) -> MailCheck:
    from bookings.models import Notification, NotificationState

    rows = Notification.objects.all()
    if booking_ids is not None:
        rows = rows.filter(booking_id__in=list(booking_ids))
    data = list(rows.values_list("pk", "state", "due_at", "last_error"))
    ids = {pk for pk, *_ in data}
    due = [(pk, state, err) for pk, state, due_at, err in data if due_at <= now]
    sent = {pk for pk, state, *_ in data if state == NotificationState.SENT}
    events = [e for e in sink.events() if booking_ids is None or e.notification in ids]
    accepted = Counter(e.notification for e in events if e.ev == "accepted")
    return MailCheck(
        rows_by_state=Counter(state for _, state, *_ in data),
        due=len(due),
        due_not_sent=[d for d in due if d[1] != NotificationState.SENT],
        sent=len(sent),
        lost=sorted(pk for pk in sent if not accepted.get(pk)),
        duplicated={pk: n for pk, n in sorted(accepted.items(), key=str) if n > 1 and pk},
        unowed=sorted(pk for pk in accepted if pk not in sent and pk is not None)
        + ([-1] * accepted.get(None, 0)),
        aborted=sum(1 for e in events if e.ev == "aborted"),
        refused=sum(1 for e in events if e.ev == "refused"),
    )


def outbox_backlog(now: datetime) -> tuple[int, int]:
    """(pending rows due by now, rows being sent): what the worker still has to do."""
    from bookings.models import Notification, NotificationState

    pending = Notification.objects.filter(state=NotificationState.PENDING, due_at__lte=now)
    sending = Notification.objects.filter(state=NotificationState.SENDING)
    return pending.count(), sending.count()


_FRAME = re.compile(r'  File "([^"]+)", line (\d+), in (\S+)')


def server_errors(log: Path, depth: int = 4) -> list[str]:
    """Each logged traceback in a gunicorn/Django log: "Exception: message [frames]",
    the frames being those that called into the failing package. A chain of exceptions
    ("During handling of the above exception...") counts once, as its last one."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    frames: list[tuple[str, str]] = []  # (top-level package, "dir/module.py:line")
    in_trace, chained = False, False
    for line in lines:
        match = _FRAME.match(line)
        if line.startswith("Traceback (most recent call last)"):
            in_trace, frames = True, []
        elif in_trace and match:
            path = Path(match.group(1))
            inside = str(path).split("site-packages/", 1)[-1]
            if inside.startswith(str(ROOT) + "/"):
                inside = inside[len(str(ROOT)) + 1 :]
            package = inside.split("/", 1)[0]
            frames.append((package, f"{path.parent.name}/{path.name}:{match.group(2)}"))
        elif in_trace and line and not line.startswith(" "):
            if frames and frames[-1][1].startswith("workers/base.py") and "SystemExit" in line:
                line, frames = "gunicorn WORKER TIMEOUT: the request was killed", frames[:-1]
            i = len(frames) - 1  # the failing package's own frames but one are left out
            while i > 0 and frames[i - 1][0] == frames[-1][0]:
                i -= 1
            shown = " > ".join(f for _, f in frames[max(0, i - depth + 1) : i + 1])
            ours = [f for package, f in frames if package in ("bookings", "payments", "config")]
            entry = f"{line[:160]} [" + (f"in {ours[-1]}: " if ours else "") + f"{shown}]"
            if chained and found:
                found[-1] = entry
            else:
                found.append(entry)
            in_trace = chained = False
        elif line.startswith(("During handling of the above", "The above exception was")):
            chained = True
        elif line and not in_trace and not line.startswith(" "):
            chained = False
    return found


# --- where the CPU went ---------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid -> (process group, name, CPU seconds so far) for every process we can read."""
    out: dict[int, tuple[int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # after "pid (comm)": state ppid pgrp ...; utime, stime are the 12th and 13th
        out[int(entry.name)] = (int(fields[2]), name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


@dataclass
class CpuSnapshot:
    at: float
    busy: float
    procs: dict[int, tuple[int, str, float]]


def cpu_snapshot() -> CpuSnapshot:
    return CpuSnapshot(time.monotonic(), _busy_seconds(), _proc_stats())


def cpu_report(before: CpuSnapshot, after: CpuSnapshot, groups: dict[str, list[int]]) -> str:
    """CPU seconds per component between two snapshots; `groups` names process groups
    (our Proc sessions). PostgreSQL is every `postgres` process (the whole cluster)."""
    me = os.getpid()

    def used(pid: int) -> float:
        return after.procs[pid][2] - (before.procs[pid][2] if pid in before.procs else 0.0)

    shares: dict[str, float] = {"bench driver": used(me) if me in after.procs else 0.0}
    claimed = {me}
    for label, pgids in groups.items():
        pids = [pid for pid, (pgid, _, _) in after.procs.items() if pgid in pgids]
        shares[label] = sum(used(pid) for pid in pids)
        claimed.update(pids)
    pg = [pid for pid, (_, name, _) in after.procs.items()
          if name.startswith("postgres") and pid not in claimed]  # fmt: skip
    shares["postgresql (whole cluster)"] = sum(used(pid) for pid in pg)
    total = after.busy - before.busy
    shares["everything else on the machine"] = max(0.0, total - sum(shares.values()))
    wall = after.at - before.at
    cores = len(os.sched_getaffinity(0))
    parts = [f"{k} {v:.1f}" for k, v in shares.items()]
    return (
        f"{total:.1f} CPU-s busy of {wall * cores:.1f} available ({wall:.0f} s × {cores} cores): "
        + ", ".join(parts)
    )


# --- the machine ------------------------------------------------------------------------------


def machine(extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    from importlib.metadata import version

    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        row = cursor.fetchone()
    pg = str(row[0]) if row else "?"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.split()
    return [
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("cpu", cpu),
        ("memory", f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"),
        ("load average", f"{load} (1, 5, 15 min, before the run)"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("django", django.get_version()),
        ("gunicorn, celery", f"{version('gunicorn')}, {version('celery')}"),
        ("postgresql", pg),
        ("redis", redis_version[2] if len(redis_version) > 2 else "?"),
        *extra,
    ]
