"""Time requests in the Django admin: read only, a tutor's own only, no offer key."""

from typing import Any

import pytest

from bookings import time_requests
from tests.security.test_admin import body, staff, superuser_client  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_tutor_reads_only_their_own_requests_and_cannot_change_them(
    frozen, now, make_tutor, make_request, tutor
):
    from tests.conftest import add_offerings

    mine = make_request(2, 3)
    other_tutor = make_tutor()
    theirs = make_request(
        2, tutor=other_tutor, offering_id=add_offerings(other_tutor)[0].pk, email="tia@example.com"
    )
    client = staff(tutor)

    listing = client.get("/admin/bookings/timerequest/")
    mine_page = client.get(f"/admin/bookings/timerequest/{mine.pk}/change/")
    their_page = client.get(f"/admin/bookings/timerequest/{theirs.pk}/change/", follow=True)

    assert listing.status_code == 200
    assert "sam@example.com" in body(listing)
    assert "tia@example.com" not in body(listing)
    assert mine_page.status_code == 200 and "Pandas, please" in body(mine_page)
    assert "tia@example.com" not in body(their_page)
    assert "tia@example.com" not in body(client.get("/admin/bookings/timerequest/?q=tia"))
    # Read only: no add, no delete, and a posted change does nothing.
    assert client.get("/admin/bookings/timerequest/add/").status_code == 403
    assert (
        client.post(f"/admin/bookings/timerequest/{mine.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    client.post(f"/admin/bookings/timerequest/{mine.pk}/change/", {"note": "changed"})
    mine.refresh_from_db()
    assert mine.note == "Pandas, please"


def test_no_admin_page_shows_an_offer_key_even_to_a_superuser(
    frozen,
    now,
    make_request,
    tutor,
    superuser_client: Any,  # noqa: F811
):
    request = make_request(2, 3)
    time_requests.time_request_accept(request_id=request.pk, tutor=tutor, choice=1, now=now)
    request.refresh_from_db()
    assert request.status == "accepted"

    for url in (
        "/admin/bookings/timerequest/",
        f"/admin/bookings/timerequest/{request.pk}/change/",
    ):
        page = superuser_client.get(url)
        assert page.status_code == 200
        assert request.offer_key not in body(page)
    probe = f"/admin/bookings/timerequest/?offer_key__startswith={request.offer_key[:3]}"
    assert superuser_client.get(probe).status_code == 400
