"""/api/tutor/calendars/: CRUD and sync now, scoped to the signed-in tutor; addresses
and passwords go in and never come out; documented in the OpenAPI schema."""

import json
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from bookings.models import BusyInterval, Tutor
from calendars import crypto
from calendars.models import CalendarSource
from calendars.serializers import CalendarSourceSerializer

from . import feeds
from .conftest import FeedServer

SECRET_URL = (
    "https://calendar.google.com/calendar/ical/ada%40gmail.com/private-0a1b2c3d4e/basic.ics"
)
PASSWORD = "abcd-efgh-ijkl-mnop"


def create(api: APIClient, **body: Any) -> Any:
    body = {"name": "Personal", "url": SECRET_URL, **body}
    return api.post("/api/tutor/calendars/", body, format="json")


def test_a_tutor_adds_a_calendar_and_sees_it_without_its_address(tutor_api: APIClient) -> None:
    response = create(tutor_api)
    assert response.status_code == 201
    body = response.json()
    assert list(body) == list(CalendarSourceSerializer().fields)
    assert body["host"] == "calendar.google.com"
    assert body["kind"] == "ics"
    assert "private-0a1b2c3d4e" not in response.content.decode()
    source = CalendarSource.objects.get(pk=body["id"])
    assert crypto.decrypt(source.secret)["url"] == SECRET_URL
    assert "private-0a1b2c3d4e" not in source.secret


def test_credentials_never_appear_in_any_answer(tutor_api: APIClient) -> None:
    created = create(
        tutor_api,
        kind="caldav",
        url="https://caldav.fastmail.com/dav/calendars/user/ada@fastmail.com/personal/",
        username="ada@fastmail.com",
        password=PASSWORD,
    )
    pk = created.json()["id"]
    answers = [
        created,
        tutor_api.get("/api/tutor/calendars/"),
        tutor_api.get(f"/api/tutor/calendars/{pk}/"),
        tutor_api.patch(
            f"/api/tutor/calendars/{pk}/", {"password": "new-" + PASSWORD}, format="json"
        ),
        tutor_api.post(f"/api/tutor/calendars/{pk}/sync/"),
    ]
    for answer in answers:
        text = answer.content.decode()
        assert answer.status_code < 300, text
        for secret in (PASSWORD, "ada@fastmail.com", "/dav/calendars/user/"):
            assert secret not in text
    assert crypto.decrypt(CalendarSource.objects.get(pk=pk).secret)["password"] == "new-" + PASSWORD


def test_a_patch_changes_only_what_it_sends(tutor_api: APIClient) -> None:
    pk = create(tutor_api, kind="caldav", username="ada", password=PASSWORD).json()["id"]
    answer = tutor_api.patch(
        f"/api/tutor/calendars/{pk}/", {"name": "Home", "is_active": False}, format="json"
    )
    assert (answer.json()["name"], answer.json()["is_active"]) == ("Home", False)
    secret = crypto.decrypt(CalendarSource.objects.get(pk=pk).secret)
    assert (secret["url"], secret["username"], secret["password"]) == (SECRET_URL, "ada", PASSWORD)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/cal.ics"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://user:pw@example.com/cal.ics"}, "url"),
        ({"url": "x" * 2001}, "url"),
        ({"url": "https://calendar.example.com/" + "a" * 2000}, "url"),
        ({"url": "https://" + "a" * 300 + ".example.com/a.ics"}, "url"),
        ({"url": "https://calendar.example.com/a\r\nHost: evil.example"}, "url"),
        ({"url": "https://calendar.example.com/a b.ics"}, "url"),
        ({"url": "https://exa\tmple.com/a.ics"}, "url"),
        ({"url": "https://calendar.example.com:25/a.ics"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": ["https://calendar.example.com/a.ics"]}, "url"),
        ({"name": "Home\u202e"}, "name"),
        ({"name": "Home\x00"}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": ""}, "name"),
        ({"username": "a\nda"}, "username"),
        ({"username": "a" * 256}, "username"),
        ({"password": "p" * 501}, "password"),
        ({"kind": "exchange"}, "kind"),
    ],
)
def test_bad_input_names_its_field(tutor_api: APIClient, body: dict[str, Any], field: str) -> None:
    response = create(tutor_api, **body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert not CalendarSource.objects.exists()


def test_a_non_ascii_address_and_password_are_kept_as_typed(tutor_api: APIClient) -> None:
    url = "https://kalender.bücher.example/ich/öffentlich.ics"
    response = create(tutor_api, url=url, username="zoë", password="pässwörd 🔑")
    assert response.status_code == 201, response.content
    assert response.json()["host"] == "kalender.bücher.example"
    secret = crypto.decrypt(CalendarSource.objects.get().secret)
    assert (secret["url"], secret["username"], secret["password"]) == (url, "zoë", "pässwörd 🔑")


def test_has_credentials_says_whether_any_are_stored(tutor_api: APIClient) -> None:
    plain = create(tutor_api).json()
    assert plain["has_credentials"] is False
    with_password = create(tutor_api, name="Nextcloud", password=PASSWORD).json()
    assert with_password["has_credentials"] is True
    cleared = tutor_api.patch(
        f"/api/tutor/calendars/{with_password['id']}/",
        {"username": "", "password": ""},
        format="json",
    )
    assert cleared.json()["has_credentials"] is False


def test_another_tutors_calendars_answer_404(
    tutor_api: APIClient, make_tutor: Any, feeds_server: FeedServer
) -> None:
    other = make_tutor()
    theirs = APIClient()
    theirs.force_authenticate(other.user)
    pk = create(tutor_api).json()["id"]
    assert theirs.get("/api/tutor/calendars/").json()["results"] == []
    for method, path in [
        ("get", f"/api/tutor/calendars/{pk}/"),
        ("patch", f"/api/tutor/calendars/{pk}/"),
        ("put", f"/api/tutor/calendars/{pk}/"),
        ("delete", f"/api/tutor/calendars/{pk}/"),
        ("post", f"/api/tutor/calendars/{pk}/sync/"),
    ]:
        response = getattr(theirs, method)(path, {"name": "Mine now"}, format="json")
        assert response.status_code == 404, (method, path)
    assert CalendarSource.objects.get(pk=pk).name == "Personal"


def test_signed_out_or_not_a_tutor_is_refused(api: APIClient, db: None) -> None:
    from django.contrib.auth import get_user_model

    assert api.get("/api/tutor/calendars/").status_code in (401, 403)
    api.force_authenticate(get_user_model().objects.create_user("student", password="x"))
    assert api.get("/api/tutor/calendars/").status_code == 403


def test_deleting_a_calendar_forgets_its_busy_times(tutor: Tutor, tutor_api: APIClient) -> None:
    pk = create(tutor_api).json()["id"]
    from datetime import UTC, datetime

    BusyInterval.objects.create(
        tutor=tutor,
        source=pk,
        start=datetime(2026, 3, 3, tzinfo=UTC),
        end=datetime(2026, 3, 4, tzinfo=UTC),
    )
    assert tutor_api.delete(f"/api/tutor/calendars/{pk}/").status_code == 204
    assert not BusyInterval.objects.exists()


def test_sync_now_queues_a_sync_that_a_worker_runs(
    tutor_api: APIClient, feeds_server: FeedServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = feeds_server.serve("/g.ics", feeds.google())
    pk = create(tutor_api, url=url).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = tutor_api.post(f"/api/tutor/calendars/{pk}/sync/")
    assert response.status_code == 202
    assert CalendarSource.objects.get(pk=pk).last_success_at is not None
    assert tutor_api.get(f"/api/tutor/calendars/{pk}/").json()["last_error"] == ""


def test_the_last_error_reads_in_plain_words(
    tutor_api: APIClient, feeds_server: FeedServer, django_capture_on_commit_callbacks: Any
) -> None:
    feeds_server.serve("/g.ics", "<html>Moved</html>")
    pk = create(tutor_api, url=feeds_server.url("/g.ics")).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        tutor_api.post(f"/api/tutor/calendars/{pk}/sync/")
    body = tutor_api.get(f"/api/tutor/calendars/{pk}/").json()
    assert (body["last_error"], body["failures"], body["busy_count"]) == ("not a calendar", 1, 0)


@pytest.mark.django_db
def test_the_endpoints_are_in_the_openapi_schema(tmp_path: Any) -> None:
    out = tmp_path / "schema.json"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(out),
    )
    schema = json.loads(out.read_text())
    paths = schema["paths"]
    assert set(paths["/api/tutor/calendars/"]) >= {"get", "post"}
    assert set(paths["/api/tutor/calendars/{id}/"]) >= {"get", "put", "patch", "delete"}
    assert "post" in paths["/api/tutor/calendars/{id}/sync/"]
    shown = schema["components"]["schemas"]["CalendarSource"]["properties"]
    assert not {"url", "username", "password", "secret"} & set(shown)
    accepted = schema["components"]["schemas"]["CalendarSourceCreateRequest"]["properties"]
    assert {"url", "username", "password"} <= set(accepted)
