"""Production settings: clean under `check --deploy`, and refusing to start half-configured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_environment_passes_check_deploy_without_warnings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=example_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "DATABASE_URL",
        "EMAIL_URL",
    ],
)
def test_production_refuses_to_start_without_a_required_setting(missing: str) -> None:
    env = {k: v for k, v in example_env().items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_postgresql_connections_prepare_repeated_statements_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config.settings.base import database_from_env

    monkeypatch.setenv("DATABASE_URL", "postgres://app@db:5432/tutoring")
    options = database_from_env("sqlite:///unused.sqlite3")["OPTIONS"]
    assert options == {"server_side_binding": True, "prepare_threshold": 2}

    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    assert "server_side_binding" not in database_from_env("sqlite:///x").get("OPTIONS", {})
    # SQLite has nothing to prepare: its options are its own.
    monkeypatch.delenv("DATABASE_URL")
    assert "prepare_threshold" not in database_from_env("sqlite:///x")["OPTIONS"]
