"""Conditional GET for a tutor's open slots: a repeated request is answered 304 Not
Modified from one indexed read of the tutor's row, without computing the list.

GET /api/slots/?tutor=… (bookings/api/public.py) and the tutor's page /t/<slug>/
(bookings/web/views.py) each build a `SlotListTag` once they have the tutor, ask it
`not_modified()` before the slot query, and `tag()` the response they render.

What the (weak) ETag says:
1. which data: the tutor's availability_version, raised by database triggers in the
   same transaction as any change to what a student can book (migration 0009), so
   every writer raises it: services, the admin, the sweepers, raw SQL;
2. which representation: a keyed digest of everything else the body depends on (the
   query, the media type), of the tutor and of (3), so a tag only ever validates the
   answer it was made for, and a client cannot make one up;
3. until when: the first moment the same query could answer differently with no data
   changing, because time alone moves the list ("valid until", below).
A request's If-None-Match matches when one of its tags has a digest that checks out for
this request, names the tutor's current version, and its moment has not come yet.

Valid until. With the data fixed, the list changes by time only when:
- a listed slot closes: the earliest listed start minus the tutor's minimum notice
  (from then on decide() says "too soon", and "past" only comes later). A slot that is
  not listed never opens by time alone: booked, travel buffer, busy elsewhere, withdrawn
  or too soon all stay so until data changes (or the clock only closes more);
- a slot enters a window that moves with the clock: GET /api/slots/ with neither start
  nor end lists [now, now + 7 days), the tutor page [now, now + 29 days). The next
  active slot starting at or after the window's end enters at its start minus the
  window's length (one indexed query, on the 200 path only; it may be closed, which
  only ends the tag early);
- the page's no-JavaScript list (?view=list) changes days at the visitor's midnight.
Unpaid holds stay busy until the sweeper expires them, a status change that raises the
version, so hold expiry times play no part. The earliest of these moments, rounded
down to the second, is the tag's; with none (a fixed window listing nothing) only a
change of data ends it. The API's body echoes its window ("start", "end"), which for a
moving window moves with the clock while the slots stay the same: hence a weak tag
(same slots, semantically equivalent).

Why "valid until" travels in the tag rather than in the Django cache: a cached entry
would live in one process (the local-memory cache production falls back to) or cost a
Redis round trip on every hit, and a miss would mean a 200 anyway. In the tag it needs
nothing but the request and the tutor's row, so any web process answers the same way,
and the digest (keyed with SECRET_KEY) keeps clients from stretching it.

Order of reads: the version is read before the list is computed (the views read the
tutor first). A change committed in between lands in a list tagged with the older
version, which only costs the next request a 200; the other order could tag old data
with the new version and serve it as current until something else changed.

Caching and Vary:
- the JSON slot list is public data, the same for everyone (no authentication, no
  cookie read): `public, no-cache`, so shared caches may keep it but must revalidate
  every use. Its body depends on the query (in the URL) and the negotiated media type
  (DRF adds Vary: Accept; only JSON is tagged, not the browsable HTML page, which
  shows the user and carries a CSRF token);
- the tutor page is `private, no-cache` with Vary: Cookie: for a signed-in tutor the
  same URL carries their navigation and a CSRF token in its sign-out form, which no
  shared cache may hand to anyone else. Only anonymous requests with no pending flash
  message are tagged or answered 304; anything else renders as before.
Neither depends on Accept-Language (no LocaleMiddleware; the site is English only).
Only tutor-scoped lists are tagged: GET /api/slots/ without `tutor` spans every tutor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import parse_etags
from rest_framework.request import Request

from .models import Slot, SlotSource, Tutor

SALT = "bookings.conditional.slot-list"
PUBLIC = "public, no-cache"
PRIVATE = "private, no-cache"


@dataclass(frozen=True)
class SlotListTag:
    """The validator of one tutor's slot list as one request asks for it."""

    tutor: Tutor
    now: datetime
    variant: str  # everything but the data and the time that the body depends on
    cache_control: str
    vary: tuple[str, ...] = ()

    def not_modified(self, request: HttpRequest) -> HttpResponseNotModified | None:
        """A 304 if the request already holds the current answer, else None."""
        header = request.META.get("HTTP_IF_NONE_MATCH")
        if not header:
            return None
        for etag in parse_etags(header):
            if self._current(etag):
                response = HttpResponseNotModified()
                self._stamp(response, etag)
                return response
        return None

    def tag(
        self,
        response: HttpResponse,
        *,
        starts: Iterable[datetime],
        window: timedelta | None = None,
        day_zone: ZoneInfo | None = None,
    ) -> HttpResponse:
        """Give a freshly computed 200 its ETag and caching headers.

        `starts`: the listed slots' starts; `window`: the list's length when it runs
        from now (a window that moves with the clock); `day_zone`: the list is cut at
        midnight in this zone (see the module docstring).
        """
        if response.status_code == 200:
            until = self.valid_until(starts=starts, window=window, day_zone=day_zone)
            self._stamp(response, self._etag(until))
        return response

    def valid_until(
        self,
        *,
        starts: Iterable[datetime],
        window: timedelta | None = None,
        day_zone: ZoneInfo | None = None,
    ) -> datetime | None:
        moments = []
        first = min(starts, default=None)
        if first is not None:
            moments.append(first - self.tutor.min_notice)
        if window is not None:
            entering = (
                Slot.objects.filter(
                    tutor_id=self.tutor.pk, removed_at__isnull=True, start__gte=self.now + window
                )
                # Private slots never enter a public list: their starts must not shape it.
                .exclude(source=SlotSource.PRIVATE)
                .order_by("start")
                .values_list("start", flat=True)
                .first()
            )
            if entering is not None:
                moments.append(entering - window)
        if day_zone is not None:
            tomorrow = self.now.astimezone(day_zone).date() + timedelta(days=1)
            moments.append(datetime.combine(tomorrow, time(), day_zone))
        return min(moments, default=None)

    # --- the tag ---------------------------------------------------------------------------

    def _digest(self, version: str, until: str) -> str:
        message = f"{self.tutor.pk}|{version}|{until}|{self.variant}"
        return salted_hmac(SALT, message, algorithm="sha256").hexdigest()[:24]

    def _etag(self, until: datetime | None) -> str:
        version = str(self.tutor.availability_version)
        moment = "-" if until is None else str(math.floor(until.timestamp()))
        return f'W/"{version}.{moment}.{self._digest(version, moment)}"'

    def _current(self, etag: str) -> bool:
        parts = etag.removeprefix("W/").strip('"').split(".")
        if len(parts) != 3:
            return False
        version, moment, digest = parts
        if version != str(self.tutor.availability_version):
            return False
        if not constant_time_compare(digest, self._digest(version, moment)):
            return False
        return moment == "-" or self.now.timestamp() < int(moment)

    def _stamp(self, response: HttpResponseBase, etag: str) -> None:
        response["ETag"] = etag
        response["Cache-Control"] = self.cache_control
        if self.vary:
            patch_vary_headers(response, self.vary)


def for_api(request: Request, *, tutor: Tutor, now: datetime) -> SlotListTag | None:
    """GET /api/slots/: the JSON answer only (the browsable page is left alone)."""
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is None or renderer.format != "json":
        return None
    query = request.query_params
    variant = "api|" + "|".join(
        f"{key}={query.get(key, '')}" for key in ("tutor", "mode", "start", "end", "tz")
    )
    return SlotListTag(tutor=tutor, now=now, variant=variant, cache_control=PUBLIC)


def for_page(
    request: HttpRequest, *, tutor: Tutor, now: datetime, variant: Sequence[object]
) -> SlotListTag | None:
    """The tutor's page, for anonymous visitors with no flash message waiting."""
    if request.user.is_authenticated or len(messages.get_messages(request)):
        return None
    return SlotListTag(
        tutor=tutor,
        now=now,
        variant="page|" + "|".join(str(part) for part in variant),
        cache_control=PRIVATE,
        vary=("Cookie",),
    )
