"""Calendar credentials encrypted at rest with Fernet keys from the environment; the
production settings refuse to start without one."""

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from bookings.models import Tutor
from calendars import crypto
from calendars.models import CalendarSource
from tests.test_settings import example_env, manage

from .conftest import add_source, sync

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_production_fails_check_deploy_without_the_key() -> None:
    env = {k: v for k, v in example_env().items() if k != "CALENDAR_CREDENTIALS_KEY"}
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "calendars.E001" in result.stderr
    assert "CALENDAR_CREDENTIALS_KEY is not set" in result.stderr


@pytest.mark.parametrize("key", ["not-a-fernet-key", "Zm9v,", "x" * 44])
def test_production_fails_check_deploy_with_a_malformed_key(key: str) -> None:
    result = manage("check", "--deploy", env={**example_env(), "CALENDAR_CREDENTIALS_KEY": key})
    assert result.returncode != 0
    assert "calendars.E002" in result.stderr
    assert "must be Fernet keys" in result.stderr
    assert key.strip(",") not in result.stderr  # the check never prints the key


def test_without_the_key_production_refuses_to_store_credentials(settings: Any) -> None:
    settings.CALENDAR_CREDENTIALS_KEY = ""
    settings.CALENDAR_CREDENTIALS_KEY_REQUIRED = True
    with pytest.raises(ImproperlyConfigured, match="Set CALENDAR_CREDENTIALS_KEY"):
        crypto.encrypt({"password": "p"})


def test_a_key_is_rotated_by_putting_a_new_one_first(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CALENDAR_CREDENTIALS_KEY = old
    token = crypto.encrypt({"password": "p"})
    settings.CALENDAR_CREDENTIALS_KEY = f"{new},{old}"
    assert crypto.decrypt(token) == {"password": "p"}
    settings.CALENDAR_CREDENTIALS_KEY = new
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(token)


def test_a_malformed_key_is_a_clear_configuration_error(settings: Any) -> None:
    settings.CALENDAR_CREDENTIALS_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="CALENDAR_CREDENTIALS_KEY must be Fernet keys"):
        crypto.encrypt({})


def test_credentials_no_key_opens_any_more_fail_the_sync_in_plain_words(
    tutor: Tutor, settings: Any
) -> None:
    settings.CALENDAR_CREDENTIALS_KEY = Fernet.generate_key().decode()
    source = add_source(tutor, "https://calendar.example.com/a.ics", NOW)
    settings.CALENDAR_CREDENTIALS_KEY = Fernet.generate_key().decode()
    result = sync(source, NOW)
    assert result.error == "the saved address or password can no longer be read: enter it again"
    assert CalendarSource.objects.get(pk=source.pk).failures == 1


def test_no_calendar_address_reaches_the_log_even_at_debug(capsys: Any) -> None:
    """urllib3 logs each URL it fetches at DEBUG, the caldav client logs answers up to
    CRITICAL; a Google secret address has no mixed case for the redaction to catch."""
    import logging
    import logging.config

    from django.conf import settings as django_settings

    secret = "/calendar/ical/x%40gmail.com/private-0123456789abcdef0123456789abcdef/basic.ics"
    debug_root = {"handlers": ["console"], "level": "DEBUG"}
    logging.config.dictConfig({**django_settings.LOGGING, "root": debug_root})
    try:
        logging.getLogger("urllib3.connectionpool").debug('"GET %s HTTP/1.1" 200 None', secret)
        logging.getLogger("caldav").critical("answer for %s: 500", secret)
        logging.getLogger("calendars.services").debug("control line")
    finally:
        logging.config.dictConfig(django_settings.LOGGING)
    err = capsys.readouterr().err
    assert "control line" in err  # the handler did write what it was given
    assert "private-0123456789abcdef" not in err
