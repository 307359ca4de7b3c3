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
    from cryptography.fernet import Fernet

    env = example_env()
    # The example's placeholder is not a key, and check --deploy says so (calendars.E002):
    # a deployment fills it in, as here.
    assert env["CALENDAR_CREDENTIALS_KEY"].startswith("<")
    env["CALENDAR_CREDENTIALS_KEY"] = Fernet.generate_key().decode()
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
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


def base_settings(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict[str, object]:
    """config/settings/base.py evaluated afresh under `environ` (the loaded settings stay)."""
    import runpy

    for key in ("EMAIL_URL", "EMAIL_FILE_PATH", "RETENTION_DAYS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(ROOT / "config" / "settings" / "base.py"))


EMAIL_SETTINGS = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            None,
            ("django.core.mail.backends.filebased.EmailBackend", "localhost", 25, "", "",
             False, False),
        ),
        (
            "smtp://mailpit:1025",
            ("django.core.mail.backends.smtp.EmailBackend", "mailpit", 1025, "", "",
             False, False),
        ),
        (
            "smtp+tls://user:p%40ss@smtp.example.com:587",
            ("django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", 587, "user",
             "p@ss", True, False),
        ),
        (
            "smtp+ssl://user:pass@smtp.example.com:465",
            ("django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", 465, "user",
             "pass", False, True),
        ),
    ],
)  # fmt: skip
def test_email_url_picks_the_transport(
    monkeypatch: pytest.MonkeyPatch, url: str | None, expected: tuple[object, ...]
) -> None:
    settings = base_settings(monkeypatch, **({"EMAIL_URL": url} if url else {}))
    assert tuple(settings[name] for name in EMAIL_SETTINGS) == expected


def test_without_email_url_emails_are_files_under_var_mail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = base_settings(monkeypatch)
    assert settings["EMAIL_FILE_PATH"] == str(ROOT / "var" / "mail")
    elsewhere = str(tmp_path / "mail")
    assert base_settings(monkeypatch, EMAIL_FILE_PATH=elsewhere)["EMAIL_FILE_PATH"] == elsewhere


def test_an_unknown_email_scheme_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="Invalid email schema"):
        base_settings(monkeypatch, EMAIL_URL="smpt://mailpit:1025")


def test_retention_defaults_to_ninety_days_and_refuses_less_than_a_week(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    assert base_settings(monkeypatch)["RETENTION_DAYS"] == 90
    assert base_settings(monkeypatch, RETENTION_DAYS="30")["RETENTION_DAYS"] == 30
    with pytest.raises(ImproperlyConfigured, match="RETENTION_DAYS"):
        base_settings(monkeypatch, RETENTION_DAYS="2")
