"""Docker health checks of the app's containers (Dockerfile, docker-compose.yml).

    python deploy/healthcheck.py web
    python deploy/healthcheck.py beat var/celerybeat-schedule

Standard library only: a check every 30 s costs a Python start, not a Django one.

web: GET /healthz from this container's gunicorn, the way Caddy sends it: with the
site's host name (the first of DJANGO_ALLOWED_HOSTS) and X-Forwarded-Proto: https, so
the answer is the page and not the redirect to HTTPS. /healthz answers 200 only when
the database and the broker answer too.

beat: its schedule file was written lately. Beat rewrites it after a tick once 3
minutes have passed since the last write, and it ticks at least every minute (tasks
are due every minute), so a beat that stopped ticking goes stale within minutes.
"""

import http.client
import os
import sys
import time
from pathlib import Path

BEAT_STALE_AFTER_SECONDS = 10 * 60


def site_host() -> str:
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")]
    for host in hosts:
        # ".example.com" allows example.com and its subdomains; "*" allows anything.
        if host and host != "*":
            return host.lstrip(".")
    return "localhost"


def check_web() -> str | None:
    bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
    port = int(bind.rsplit(":", 1)[-1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=8)
    try:
        conn.request("GET", "/healthz", headers={"Host": site_host(), "X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as exc:
        return f"gunicorn on port {port}: {exc}"
    finally:
        conn.close()
    if response.status != 200:
        return f"/healthz answered {response.status}: {body}"
    return None


def check_beat(schedule: str) -> str | None:
    # shelve may add a suffix (.db, .dat, .dir) depending on the dbm module underneath.
    path = Path(schedule)
    files = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
    if not files:
        return f"no schedule file {schedule}* yet"
    age = time.time() - max(p.stat().st_mtime for p in files)
    if age > BEAT_STALE_AFTER_SECONDS:
        return f"{schedule} last written {age:.0f} s ago"
    return None


def main(argv: list[str]) -> int:
    if argv[1:2] == ["web"]:
        problem = check_web()
    elif argv[1:2] == ["beat"] and len(argv) == 3:
        problem = check_beat(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
