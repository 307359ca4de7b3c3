"""A wrong link shows the site's own 404 page, with DEBUG on as well as off."""

import pytest

from bookings.models import Tutor


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    "path",
    [
        "/bookings/{near}/",
        "/bookings/{near}/cancel/",
        "/bookings/{near}/reschedule/",
        "/bookings/not-a-token/",
        "/calendar/{near}.ics",
        "/t/nobody-here/",
    ],
)
def test_a_wrong_link_shows_the_sites_own_404_page(client, settings, tutor: Tutor, debug, path):
    settings.DEBUG = debug
    token = tutor.feed_token
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get(path.format(near=near))
    assert response.status_code == 404
    text = response.content.decode()
    if path.startswith("/calendar/"):
        return  # a calendar client gets a bare 404, no page
    assert "Page not found" in text
    assert "check that you have the whole address" in text
    assert "URLconf" not in text and "Django tried these URL patterns" not in text
    assert near not in text
