"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid. Whatever comes in, the API
must answer without a 5xx, with a documented status code and content type, with a body
that matches the schema, and it must refuse the tutor endpoints without credentials.
(Schema-valid requests may still be refused by business rules — a reversed range, a
slot in the past — so "positive data acceptance" is not one of the checks.)
"""

from datetime import time
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bookings import services
from config.wsgi import application
from tests.conftest import add_offerings

pytestmark = pytest.mark.django_db

# Loaded from the running app (no database needed to build the schema).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
# The tutor's API token: fixed, because schemathesis asks for it while collecting.
TOKEN = "schemathesis0token0for0the0test0tutor00"


@schema.auth()
class TutorToken:
    """Authenticates as the test's tutor; schemathesis also tries without, to check
    that the tutor endpoints refuse that."""

    def get(self, case: Any, ctx: Any) -> str:
        return TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Django closes the database connection when a request ends; its test client stops
    that, and so must we when calling the WSGI app directly, or the test's own
    transaction (on PostgreSQL) goes with it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tutor_token(make_tutor) -> str:
    """A tutor with offerings, a rule and its slots, so ids in requests can hit rows."""
    tutor = make_tutor(slug="ada")
    remote, in_person = add_offerings(tutor)
    services.rule_save(
        tutor=tutor,
        now=timezone.now(),
        weekdays=[1, 2, 3, 4, 5],
        start_time=time(9),
        end_time=time(12),
        offerings=[remote, in_person],
    )
    return Token.objects.create(user=tutor.user, key=TOKEN).key


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail_or_break_its_schema(case, tutor_token):
    case.call_and_validate(checks=CHECKS)
