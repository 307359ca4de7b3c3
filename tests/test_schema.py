"""The OpenAPI schema: generated without warnings and served with its docs."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_generates_without_a_single_warning(tmp_path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/tutors/",
        "/api/slots/",
        "/api/bookings/",
        "/api/bookings/{token}/cancel/",
        "/api/bookings/{token}/reschedule/",
        "/api/bookings/{token}/invite.ics",
        "/api/tutor/rules/",
        "/api/tutor/bookings/{id}/no-show/",
    ):
        assert f"{path}:" in text


def test_the_schema_and_swagger_ui_are_served_without_third_party_assets(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


def test_bookings_are_rendered_with_exactly_the_documented_fields(
    api, tutor_api, frozen, slot
) -> None:
    from bookings.api.serializers import BookingSerializer, TutorBookingSerializer
    from tests.conftest import hold

    held = hold(api, slot)
    assert held.status_code == 201
    assert list(held.json()) == list(BookingSerializer().fields)

    listed = tutor_api.get("/api/tutor/bookings/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert list(row) == list(TutorBookingSerializer().fields)
    assert "payment_url" not in row
