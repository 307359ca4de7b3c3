"""The tutor's private calendar feed: one URL a calendar app subscribes to.

The secret is in the path (webcal:// clients drop query strings and cannot send
headers); rotating it (services.tutor_rotate_feed) kills the old URL at once. The feed
carries no student secret: ics builds tutor events without the manage link.
"""

from datetime import timedelta

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import ics
from .models import Booking, Tutor, token_digest, token_matches
from .selectors import TOKEN_RE

FEED_HISTORY = timedelta(days=30)


@require_GET
def tutor_feed(request: HttpRequest, token: str) -> HttpResponse:
    if not TOKEN_RE.fullmatch(token):
        raise Http404
    tutor = Tutor.objects.filter(feed_token_digest=token_digest(token), is_active=True).first()
    if tutor is None or not token_matches(tutor.feed_token, token):
        raise Http404
    now = timezone.now()
    bookings = (
        Booking.objects.filter(
            tutor=tutor,
            status__in=ics.EVENT_STATUSES,  # sessions that stand; never holds
            slot__end__gte=now - FEED_HISTORY,
        )
        .select_related("slot", "offering", "tutor")
        .order_by("slot__start")
    )
    body = ics.feed_calendar(bookings, name=f"{tutor.display_name}: sessions", now=now)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="sessions.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
