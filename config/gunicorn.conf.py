"""The one gunicorn configuration: `make run` (Procfile), the Docker image and compose.

    gunicorn -c config/gunicorn.conf.py config.wsgi:application

Sized for a 2-core machine: 2 processes × 4 threads. Threads cover the waits (a Stripe
call, a SQLite writer queueing for the write lock, a slow client); a burst beyond the
8 in flight waits in the listen backlog instead of being reset. Environment:
WEB_CONCURRENCY (processes), GUNICORN_THREADS, GUNICORN_TIMEOUT (seconds), GUNICORN_BIND
(default 127.0.0.1:$PORT; the image sets 0.0.0.0:8000), FORWARDED_ALLOW_IPS (gunicorn's
own: proxies whose X-Forwarded-Proto is believed).

No access log of gunicorn's: its lines carry the whole URL (manage and feed tokens,
Stripe's session_id) and the Referer. The app writes one line per request instead
(config.observability: method, redacted path, status, duration, request id). gunicorn's
own lines (boot, worker timeouts, malformed requests, and the access log should someone
turn it back on) pass through the same redaction.
"""

import os
import sys
from pathlib import Path

from gunicorn import glogging  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.observability import JsonFormatter, RedactFilter  # noqa: E402


def _log_format() -> str:
    """What settings.LOG_FORMAT says, read before Django is loaded."""
    production = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production")
    return os.environ.get("LOG_FORMAT") or ("json" if production else "plain")


class RedactingLogger(glogging.Logger):
    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        json_lines = _log_format() == "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not any(isinstance(f, RedactFilter) for f in handler.filters):
                    handler.addFilter(RedactFilter())
                if json_lines:
                    handler.setFormatter(JsonFormatter())


bind = [os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"]
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
backlog = 2048
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle processes now and then, so a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200
# The heartbeat file on tmpfs: a container's overlay filesystem can stall it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# gunicorn's runtime control socket (~/.gunicorn/gunicorn.ctl) is unused here, and a
# second instance on the same machine (make run next to a test run) would take it over.
control_socket_disable = True

accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logger_class = RedactingLogger
