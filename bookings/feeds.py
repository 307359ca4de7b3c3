"""The tutor's private calendar feed: one URL a calendar app subscribes to.

The secret is in the path (webcal:// clients drop query strings and cannot send
headers); rotating it (services.tutor_rotate_feed) kills the old URL at once. The feed
carries no student secret: ics builds tutor events without the manage link.

Calendar apps poll the feed (REFRESH-INTERVAL and X-PUBLISHED-TTL ask every
ics.FEED_REFRESH), so an unchanged feed must cost little and look unchanged:
- the body is the same bytes until something in it changes (each event's DTSTAMP is
  when its booking last changed, not the time of the request);
- ETag is a digest of those bytes (a strong validator): If-None-Match with it is
  answered 304 Not Modified, without the body;
- Last-Modified is when the newest change to the listed period's bookings happened
  (cancelled ones included, since a cancellation removes an event). It is sent for
  clients that show it, but a date alone never earns a 304: an edit of an offering's
  title, link or place, or of the tutor's name, changes the feed while no booking
  changes, so only the digest can prove a copy current (RFC 9110 lets a server answer
  200 to If-Modified-Since);
- HEAD answers the same headers as GET, without the body.
"""

import hashlib
from datetime import timedelta

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils import timezone
from django.utils.http import http_date, parse_etags, quote_etag
from django.views.decorators.http import require_safe

from . import ics
from .models import Booking, BookingStatus
from .selectors import tutor_by_feed_token

FEED_HISTORY = timedelta(days=30)
CACHE_CONTROL = "private, max-age=300"


@require_safe
def tutor_feed(request: HttpRequest, token: str) -> HttpResponse:
    tutor = tutor_by_feed_token(token)
    if tutor is None:
        raise Http404
    now = timezone.now()
    window = (
        Booking.objects.filter(
            tutor=tutor,
            # Sessions that stand, and cancellations (only for Last-Modified): never holds.
            status__in=[*ics.EVENT_STATUSES, BookingStatus.CANCELLED],
            slot__end__gte=now - FEED_HISTORY,
        )
        .select_related("slot", "offering", "tutor", "series")
        .order_by("slot__start", "pk")
    )
    bookings = list(window)
    body = ics.feed_calendar(bookings, name=f"{tutor.display_name}: sessions")
    etag = quote_etag(hashlib.sha256(body).hexdigest()[:32])
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    changes = [ics.feed_stamp(b) for b in bookings]
    if changes:
        headers["Last-Modified"] = http_date(max(changes).timestamp())
    # If-None-Match compares weakly (RFC 9110 §13.1.2): W/"x" matches "x".
    held = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    if etag in held or "*" in held:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(
            body if request.method == "GET" else b"",
            content_type="text/calendar; charset=utf-8",
        )
        response["Content-Disposition"] = 'inline; filename="sessions.ics"'
        response["Content-Length"] = str(len(body))
    for name, value in headers.items():
        response[name] = value
    return response
