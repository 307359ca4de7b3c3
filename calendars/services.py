"""Every write of the calendars app: sources, and syncing them into busy times.

A sync fetches and parses outside any transaction (a fetch can take its whole timeout),
then replaces the source's bookings.BusyInterval rows in one short transaction. A fetch
or parse that fails changes no busy time: the last good ones stay, so a broken feed
never silently opens slots. Failures back off; a source failing for
CALENDAR_GIVE_UP_DAYS stops and its tutor gets one email.

Changing a tutor's busy times raises Tutor.availability_version (cached slot lists go
stale) through the database triggers on bookings_busyinterval (bookings migration
0011): a sync writes rows only when they changed, so an unchanged calendar keeps
every cached list valid.

Two workers never sync one source at once: each claims it first with a conditional
update (claimed_until), and a claim left by a dead worker lapses after LEASE.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string

from bookings import notifications
from bookings.availability import horizon_end
from bookings.errors import ApplicationError
from bookings.ics import one_line
from bookings.models import Booking, BookingStatus, BusyInterval, Tutor
from bookings.queueing import registered
from bookings.validation import check_name, normalise_text

from . import crypto, fetch, parse
from .models import CalendarSource, SourceKind

logger = logging.getLogger(__name__)

# Longer than a fetch can take (its timeout, plus parsing and the write).
LEASE = timedelta(minutes=5)
# Each source is fetched every few minutes by our workers: a tutor needs a handful.
MAX_SOURCES_PER_TUTOR = 20
MAX_BACKOFF = timedelta(hours=6)
# Recurrences are expanded this far past the slot horizon, so a feed that answers 304
# for a while still covers the horizon; once it no longer does, it is fetched in full.
EXPAND_AHEAD = timedelta(days=14)
HISTORY = timedelta(days=1)


def sync_interval() -> timedelta:
    return timedelta(minutes=settings.CALENDAR_SYNC_MINUTES)


def backoff(failures: int) -> timedelta:
    """The sync interval, doubled for each failure in a row, at most MAX_BACKOFF."""
    return min(sync_interval() * 2 ** max(failures - 1, 0), MAX_BACKOFF)


# --- sources --------------------------------------------------------------------------------


def _name(value: str) -> str:
    name = normalise_text(value)
    if not name:
        raise ApplicationError(
            "invalid", "Give the calendar a name.", fields={"name": ["Required."]}
        )
    try:
        check_name(name)
    except ValidationError as exc:
        raise ApplicationError("invalid", exc.messages[0], fields={"name": exc.messages}) from None
    return name[:120]


def _url(value: str) -> str:
    try:
        return fetch.normalise_url(value)
    except ValueError as exc:
        raise ApplicationError("invalid", str(exc), fields={"url": [str(exc)]}) from None


def _queue_sync(source_id: int) -> None:
    """Sync soon, in a worker. If the broker is down the beat task finds it due."""

    def queue() -> None:
        try:
            registered("calendars.tasks.sync_source").delay(source_id, force=True)
        except Exception:
            logger.warning("broker unavailable; calendar source %s waits for beat", source_id)

    transaction.on_commit(queue)


def source_create(
    *,
    tutor: Tutor,
    name: str,
    url: str,
    now: datetime,
    kind: str = SourceKind.ICS,
    username: str = "",
    password: str = "",
) -> CalendarSource:
    """Add a calendar; its first sync is queued at once."""
    if kind not in SourceKind.values:
        raise ApplicationError("invalid", "Unknown kind of calendar.", fields={"kind": ["?"]})
    clean = _url(url)
    with transaction.atomic():
        _lock_tutor(tutor.pk)
        if CalendarSource.objects.filter(tutor=tutor).count() >= MAX_SOURCES_PER_TUTOR:
            raise ApplicationError(
                "invalid",
                f"You can connect at most {MAX_SOURCES_PER_TUTOR} calendars: remove one first.",
            )
        source = CalendarSource.objects.create(
            tutor=tutor,
            kind=kind,
            name=_name(name),
            host=fetch.host_of(clean),
            secret=crypto.encrypt({"url": clean, "username": username, "password": password}),
            next_sync_at=now,
        )
        _queue_sync(source.pk)
    return source


def source_update(
    *,
    source: CalendarSource,
    now: datetime,
    name: str | None = None,
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    is_active: bool | None = None,
) -> CalendarSource:
    """Change what is given; credentials left out stay as they are. A new address or
    new credentials start afresh (no conditional GET) with a sync queued at once."""
    with transaction.atomic():
        _lock_tutor(source.tutor_id)
        source = CalendarSource.objects.select_for_update().get(pk=source.pk)
        if name is not None:
            source.name = _name(name)
        if is_active is not None:
            source.is_active = is_active
        if url is not None or username is not None or password is not None:
            secret = _secret(source)
            if url is not None:
                secret["url"] = _url(url)
                source.host = fetch.host_of(secret["url"])
            if username is not None:
                secret["username"] = username
            if password is not None:
                secret["password"] = password
            source.secret = crypto.encrypt(secret)
            source.etag = source.last_modified = source.content_digest = ""
            source.expanded_until = None
        if url is not None or username is not None or password is not None or is_active:
            source.next_sync_at = now
            source.stopped_at = source.stop_notice_sent_at = None
            source.failures = 0
            source.failing_since = None
            _queue_sync(source.pk)
        source.save()
    return source


def source_sync_soon(*, source: CalendarSource, now: datetime) -> None:
    """ "Sync now": queued for a worker (a fetch may take its whole timeout), forced even
    if the source is backing off or stopped."""
    with transaction.atomic():
        CalendarSource.objects.filter(pk=source.pk).update(next_sync_at=now)
        _queue_sync(source.pk)


def source_delete(*, source: CalendarSource, now: datetime) -> None:
    """Forget the calendar and the busy times it gave: slots they hid open again.

    Under the tutor's lock, which a sync's write takes too: a sync that was fetching
    while the source went finds it gone and stores nothing (no busy time is left
    behind without a source to remove it by)."""
    with transaction.atomic():
        _lock_tutor(source.tutor_id)
        BusyInterval.objects.filter(source=source.pk).delete()
        CalendarSource.objects.filter(pk=source.pk).delete()


def _lock_tutor(tutor_id: int) -> None:
    """The tutor's row lock, as holds take it: a hold never decides on half a sync."""
    Tutor.objects.select_for_update().filter(pk=tutor_id).values_list("pk").get()


def _secret(source: CalendarSource) -> dict[str, Any]:
    try:
        return crypto.decrypt(source.secret)
    except crypto.InvalidToken:
        return {"url": "", "username": "", "password": ""}


# --- syncing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    outcome: str  # "changed", "unchanged", "failed", "skipped"
    busy: int = 0
    error: str = ""


def sources_due(*, now: datetime, limit: int = 200) -> list[int]:
    """Active, not stopped, due, and not being synced right now."""
    rows = CalendarSource.objects.filter(
        is_active=True, stopped_at__isnull=True, next_sync_at__lte=now
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    return list(rows.order_by("next_sync_at").values_list("pk", flat=True)[:limit])


def source_sync(*, source_id: int, now: datetime, force: bool = False) -> SyncResult:
    """Fetch, parse and store one source's busy times. `force` ("Sync now") runs it even
    when it is not due, paused by failures or stopped; a second caller while one runs
    is skipped."""
    claim = CalendarSource.objects.filter(pk=source_id).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    if not force:
        claim = claim.filter(is_active=True, stopped_at__isnull=True, next_sync_at__lte=now)
    if not claim.update(claimed_until=now + LEASE, last_attempt_at=now):
        return SyncResult("skipped")
    source = CalendarSource.objects.select_related("tutor").get(pk=source_id)
    tutor = source.tutor
    window = (now - HISTORY, horizon_end(tutor, now) + EXPAND_AHEAD)
    try:
        intervals, fetched = _read(source, tutor=tutor, window=window, now=now)
    except (fetch.FetchError, parse.NotACalendar) as exc:
        return _failed(source, str(exc), now=now)
    except crypto.InvalidToken:
        return _failed(
            source, "the saved address or password can no longer be read: enter it again", now=now
        )
    except Exception:
        # A bug of ours or a library's: the tutor sees that the sync failed and the
        # source backs off like any failing one (rather than staying claimed and being
        # retried every few minutes), and the error still goes to the logs and Sentry.
        _failed(source, "an unexpected error on our side: we are looking into it", now=now)
        raise
    return _succeeded(source, intervals, fetched, window=window, now=now)


@dataclass(frozen=True)
class _Fetched:
    digest: str
    etag: str = ""
    last_modified: str = ""


def _read(
    source: CalendarSource, *, tutor: Tutor, window: tuple[datetime, datetime], now: datetime
) -> tuple[list[parse.Interval] | None, _Fetched]:
    """The source's busy times in `window`, or None when it has not changed."""
    secret = crypto.decrypt(source.secret)
    covers = (
        source.expanded_until is not None
        and source.expanded_until >= window[1] - EXPAND_AHEAD
        and source.read_in_zone == tutor.timezone
    )
    if source.kind == SourceKind.CALDAV:
        bodies = fetch.caldav_events(
            secret["url"],
            username=secret.get("username", ""),
            password=secret.get("password", ""),
            start=window[0],
            end=window[1],
        )
        got = _Fetched(_digest(bodies))
    else:
        answer = fetch.fetch_ics(
            secret["url"],
            etag=source.etag if covers else "",
            last_modified=source.last_modified if covers else "",
            username=secret.get("username", ""),
            password=secret.get("password", ""),
        )
        if answer.body is None:
            return None, _Fetched(source.content_digest, answer.etag, answer.last_modified)
        bodies = [answer.body]
        got = _Fetched(_digest(bodies), answer.etag, answer.last_modified)
    if covers and got.digest == source.content_digest:
        return None, got
    ours = _our_uids(tutor, since=window[0])
    intervals = parse.busy_times(bodies, zone=tutor.zone, start=window[0], end=window[1], ours=ours)
    return intervals, got


def _digest(bodies: list[bytes]) -> str:
    digest = hashlib.sha256()
    for body in bodies:
        digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()


_OUR_UID = re.compile(r"booking-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@.+")


def _our_uids(tutor: Tutor, *, since: datetime) -> Any:
    """A test for the UIDs of the tutor's own sessions (Booking.calendar_uid, stored),
    which reach their calendar through our invites and feed: those events must not hide
    the slots they were booked in. UIDs of the old form (booking-<id>@host, from before
    bookings migration 0013) also match by booking id, whatever host name they have."""
    rows = Booking.objects.filter(tutor=tutor, slot__end__gt=since).values_list(
        "pk", "calendar_uid"
    )
    ids, uids = set(), set()
    for pk, calendar_uid in rows:
        ids.add(str(pk))
        uids.add(calendar_uid)

    def ours(uid: str) -> bool:
        if uid.strip() in uids:
            return True
        found = _OUR_UID.fullmatch(uid.strip())
        return found is not None and found.group(1) in ids

    return ours


def _succeeded(
    source: CalendarSource,
    intervals: list[parse.Interval] | None,
    fetched: _Fetched,
    *,
    window: tuple[datetime, datetime],
    now: datetime,
) -> SyncResult:
    changed = False
    with transaction.atomic():
        _lock_tutor(source.tutor_id)
        if (stale := _changed_meanwhile(source, now=now)) is not None:
            return stale
        fields: dict[str, Any] = {
            "claimed_until": None,
            "last_success_at": now,
            "last_error": "",
            "failures": 0,
            "failing_since": None,
            "stopped_at": None,
            "stop_notice_sent_at": None,
            "next_sync_at": now + sync_interval(),
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "content_digest": fetched.digest,
        }
        if intervals is not None:
            fields["expanded_until"] = window[1]
            fields["read_in_zone"] = source.tutor.timezone
            stored = list(
                BusyInterval.objects.filter(source=source.pk)
                .order_by("start", "end")
                .values_list("start", "end")
            )
            if stored != intervals:
                BusyInterval.objects.filter(source=source.pk).delete()
                BusyInterval.objects.bulk_create(
                    [
                        BusyInterval(tutor_id=source.tutor_id, source=source.pk, start=lo, end=hi)
                        for lo, hi in intervals
                    ],
                    batch_size=2000,
                )
                changed = True
            fields["busy_count"] = len(intervals)
        CalendarSource.objects.filter(pk=source.pk).update(**fields)
        # Checked on every success: a session paid for while the calendar was syncing
        # can sit on a busy time that did not change.
        _warn_about_conflicts(source, now=now)
    busy = len(intervals) if intervals is not None else source.busy_count
    logger.info("calendar source %s synced: %s busy times", source.pk, busy)
    return SyncResult("changed" if changed else "unchanged", busy=busy)


def _changed_meanwhile(source: CalendarSource, *, now: datetime) -> SyncResult | None:
    """While the sync fetched, was the source removed, or given a new address or new
    credentials? Then what was fetched is not the source's any more: nothing is stored
    (the busy times of a removed source would stay with nothing to remove them by), and
    a source with a new address is due again at once. Call with the tutor's lock held,
    as source_delete and source_update's writes follow it."""
    current = CalendarSource.objects.filter(pk=source.pk).values_list("secret", flat=True).first()
    if current is None:
        return SyncResult("skipped")
    if current != source.secret:
        CalendarSource.objects.filter(pk=source.pk).update(claimed_until=None, next_sync_at=now)
        return SyncResult("skipped")
    return None


def _failed(source: CalendarSource, error: str, *, now: datetime) -> SyncResult:
    error = one_line(error, limit=255)
    with transaction.atomic():
        _lock_tutor(source.tutor_id)
        if (stale := _changed_meanwhile(source, now=now)) is not None:
            return stale
        row = CalendarSource.objects.select_for_update().get(pk=source.pk)
        row.failures += 1
        row.failing_since = row.failing_since or now
        row.last_error, row.last_error_at = error, now
        row.next_sync_at = now + backoff(row.failures)
        row.claimed_until = None
        give_up = now - row.failing_since >= timedelta(days=settings.CALENDAR_GIVE_UP_DAYS)
        if give_up and row.stopped_at is None:
            row.stopped_at = now
            transaction.on_commit(lambda: _queue_stop_notice(row.pk))
        row.save()
    logger.warning("calendar source %s failed (%s in a row): %s", source.pk, row.failures, error)
    return SyncResult("failed", error=error)


# --- sessions under a busy time -------------------------------------------------------------


def _warn_about_conflicts(source: CalendarSource, *, now: datetime) -> int:
    """Owe the tutor one email per confirmed upcoming session this source's busy times
    cover (the outbox makes a second one for the same session version a no-op). The
    session stands: the tutor keeps, moves or cancels it."""
    covering = BusyInterval.objects.filter(
        source=source.pk, start__lt=OuterRef("slot__end"), end__gt=OuterRef("slot__start")
    )
    sessions = (
        Booking.objects.filter(
            tutor_id=source.tutor_id, status=BookingStatus.CONFIRMED, slot__end__gt=now
        )
        .filter(Exists(covering))
        .select_related("slot", "tutor", "offering")
    )
    warned = 0
    for booking in sessions:
        busy = (
            BusyInterval.objects.filter(
                source=source.pk, start__lt=booking.slot.end, end__gt=booking.slot.start
            )
            .order_by("start")
            .first()
        )
        if busy is None:
            continue
        notifications.notify_busy_conflict(
            booking, now=now, calendar=source.name, start=busy.start, end=busy.end
        )
        warned += 1
    return warned


# --- giving up ------------------------------------------------------------------------------


def _queue_stop_notice(source_id: int) -> None:
    try:
        registered("calendars.tasks.send_stop_notice").delay(source_id)
    except Exception:
        logger.warning("broker unavailable; stop notice for source %s waits for beat", source_id)


def stop_notices_due() -> list[int]:
    return list(
        CalendarSource.objects.filter(
            stopped_at__isnull=False, stop_notice_sent_at__isnull=True
        ).values_list("pk", flat=True)[:100]
    )


def stop_notice_send(*, source_id: int, now: datetime) -> bool:
    """Tell the tutor a calendar stopped syncing. Claimed with a conditional update, so
    two workers never both send it; a failed send gives the claim back for a retry."""
    claimed = CalendarSource.objects.filter(
        pk=source_id, stopped_at__isnull=False, stop_notice_sent_at__isnull=True
    ).update(stop_notice_sent_at=now)
    if not claimed:
        return False
    source = CalendarSource.objects.select_related("tutor").get(pk=source_id)
    context = {
        "name": one_line(source.name, limit=120),
        "host": one_line(source.host, limit=255),
        "error": one_line(source.last_error, limit=255),
        "days": settings.CALENDAR_GIVE_UP_DAYS,
        "page_url": f"{settings.PUBLIC_BASE_URL}/tutor/calendars/",
    }
    message = EmailMessage(
        subject=one_line(f"Calendar “{context['name']}” stopped syncing", limit=250),
        body=render_to_string("calendars/emails/stopped.txt", context),
        to=[one_line(source.tutor.email)],
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    try:
        message.send()
    except Exception:
        CalendarSource.objects.filter(pk=source_id).update(stop_notice_sent_at=None)
        raise
    return True
