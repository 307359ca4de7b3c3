"""Emails the service owes, through an outbox (bookings.models.Notification).

Owing: services call the notify_* functions inside the transaction of the state change
that causes the email, so the row exists exactly when the change does. A task queued
on commit delivers rows due now; reminders wait as rows and the minute sweep sends
them (no far-future ETA tasks: Redis would redeliver those).

Sending: deliver() claims a row with a conditional update (pending → sending), so two
workers or two sweeps never both send it — this works on SQLite too, where
select_for_update is a no-op. A worker that dies mid-send leaves the row "sending";
after LEASE (longer than the task's hard time limit, so the old sender is surely dead)
the sweep hands it out again. Transient SMTP trouble retries with backoff; a permanent
refusal stops at once and shows as failed in the admin.
"""

import logging
import re
import smtplib
import time as monotonic_time
from datetime import datetime, timedelta
from email import encoders
from email.mime.base import MIMEBase
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string

from . import ics
from .ics import one_line
from .models import (
    Booking,
    BookingStatus,
    Mode,
    Notification,
    NotificationKind,
    NotificationState,
    Recipient,
    is_timezone,
)
from .money import format_money
from .queueing import deliver_notification

logger = logging.getLogger(__name__)

# A claimed row whose sender has not finished after this long is handed out again.
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


def reminder_offsets() -> list[timedelta]:
    return [timedelta(minutes=m) for m in settings.BOOKING_REMINDER_OFFSETS_MINUTES]


def offset_label(minutes: int) -> str:
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "1 day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


# --- owing --------------------------------------------------------------------------------


def _row(
    booking: Booking,
    kind: str,
    recipient: str,
    *,
    key: str,
    due_at: datetime,
    context: dict[str, Any],
) -> Notification:
    return Notification(
        booking=booking, kind=kind, recipient=recipient, key=key, due_at=due_at, context=context
    )


def _owe(booking: Booking, rows: list[Notification], *, now: datetime) -> None:
    """Store the rows not stored yet, and queue those due now when the transaction commits.

    Two statements however many rows: one INSERT that skips rows already there (the
    one_notification_per_version constraint makes owing twice a no-op), one SELECT of
    the due rows still pending. Queuing a row twice is harmless: deliver() claims it.
    """
    if not rows:
        return
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    due = [row for row in rows if row.due_at <= now]
    if not due:
        return
    ids = list(
        Notification.objects.filter(
            booking=booking,
            state=NotificationState.PENDING,
            due_at__lte=now,
            kind__in={row.kind for row in due},
            key__in={row.key for row in due},
        ).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: enqueue_all(ids))


def _version(booking: Booking) -> dict[str, Any]:
    return {
        "start": booking.slot.start.isoformat(),
        "end": booking.slot.end.isoformat(),
        "sequence": booking.sequence,
    }


def _reminders(booking: Booking, *, now: datetime) -> list[Notification]:
    """One reminder per offset and start time; none for an offset already passed."""
    rows = []
    for offset in reminder_offsets():
        due = booking.slot.start - offset
        if due <= now:
            continue  # booked inside this offset: that reminder would be late or pointless
        minutes = int(offset.total_seconds() // 60)
        rows.append(
            _row(
                booking,
                NotificationKind.REMINDER,
                Recipient.STUDENT,
                key=f"{minutes}m@{booking.slot.start.isoformat()}",
                due_at=due,
                context={**_version(booking), "offset_minutes": minutes},
            )
        )
    return rows


def _void_reminders(booking: Booking) -> int:
    return Notification.objects.filter(
        booking=booking, kind=NotificationKind.REMINDER, state=NotificationState.PENDING
    ).update(state=NotificationState.VOID)


def _due_now(
    booking: Booking,
    kind: str,
    *recipients: str,
    now: datetime,
    key: str,
    extra: dict[str, Any] | None = None,
) -> list[Notification]:
    """A message due at once to each recipient, about the booking as it is now."""
    context = {**_version(booking), **(extra or {})}
    return [_row(booking, kind, r, key=key, due_at=now, context=context) for r in recipients]


BOTH = (Recipient.STUDENT, Recipient.TUTOR)


def notify_confirmed(booking: Booking, *, now: datetime) -> None:
    rows = _due_now(booking, NotificationKind.CONFIRMED, *BOTH, now=now, key="1")
    _owe(booking, rows + _reminders(booking, now=now), now=now)


def notify_cancelled(booking: Booking, *, now: datetime, refund_amount: int, by: str) -> None:
    _void_reminders(booking)
    extra = {"refund_amount": refund_amount, "cancelled_by": by}
    key = str(booking.sequence)
    rows = _due_now(booking, NotificationKind.CANCELLED, *BOTH, now=now, key=key, extra=extra)
    _owe(booking, rows, now=now)


def notify_rescheduled(booking: Booking, *, now: datetime, old_start: datetime) -> None:
    _void_reminders(booking)
    extra = {"old_start": old_start.isoformat()}
    key = str(booking.sequence)
    rows = _due_now(booking, NotificationKind.RESCHEDULED, *BOTH, now=now, key=key, extra=extra)
    _owe(booking, rows + _reminders(booking, now=now), now=now)


def hold_expired_email_delay() -> timedelta:
    return timedelta(minutes=settings.BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES)


def notify_hold_expired(booking: Booking, *, now: datetime) -> None:
    """Owed a little later than the expiry: a student still on the checkout page may pay
    in the next minutes, and "nothing was charged" must not be followed by "confirmed"
    or "refunded". Delivery drops it if that happened (see _stale)."""
    row = _row(
        booking,
        NotificationKind.HOLD_EXPIRED,
        Recipient.STUDENT,
        key="1",
        due_at=now + hold_expired_email_delay(),
        context=_version(booking),
    )
    _owe(booking, [row], now=now)


def notify_late_payment_refunded(
    booking: Booking, *, now: datetime, amount: int, why: str = "taken"
) -> None:
    rows = _due_now(
        booking,
        NotificationKind.LATE_PAYMENT_REFUNDED,
        Recipient.STUDENT,
        now=now,
        key="1",
        extra={"refund_amount": amount, "why": why},
    )
    _owe(booking, rows, now=now)


# Why money could not pay for a booking, as the emails say it.
REFUSAL_REASONS = {
    "wrong_amount": "the amount paid was not the session's price",
    "wrong_currency": "it was paid in a different currency from the session's price",
    "not_its_checkout": "it did not come through this booking's own checkout page",
}


def notify_payment_refused(
    booking: Booking, *, now: datetime, amount: int, currency: str, why: str
) -> None:
    """Money that could not confirm the booking was refunded in full: student and tutor
    are told once per distinct refusal (its reason, amount and currency)."""
    currency = one_line(currency).lower()[:3]
    rows = _due_now(
        booking,
        NotificationKind.PAYMENT_REFUSED,
        *BOTH,
        now=now,
        key=f"{one_line(why)[:40]}-{amount}-{currency}",
        extra={"refused_amount": amount, "refused_currency": currency, "why": why},
    )
    _owe(booking, rows, now=now)


def notify_busy_conflict(
    booking: Booking, *, now: datetime, calendar: str, start: datetime, end: datetime
) -> None:
    """A busy time in the tutor's own calendar (`calendar`, from `start` to `end`) now
    covers this confirmed session. The session stands; the tutor is told once per
    version of the booking, so a session moved onto another clash is told again."""
    extra = {"calendar": calendar, "busy_start": start.isoformat(), "busy_end": end.isoformat()}
    rows = _due_now(
        booking,
        NotificationKind.BUSY_CONFLICT,
        Recipient.TUTOR,
        now=now,
        key=str(booking.sequence),
        extra=extra,
    )
    _owe(booking, rows, now=now)


def enqueue_all(notification_ids: list[int]) -> None:
    for notification_id in notification_ids:
        enqueue(notification_id)


def enqueue(notification_id: int) -> None:
    """Hand a row to Celery. If the broker is down the row simply waits for the sweep."""
    try:
        deliver_notification.delay(notification_id)
    except Exception:
        logger.warning("broker unavailable; notification %s waits for the sweep", notification_id)


# --- rendering ----------------------------------------------------------------------------
#
# Every stored string (names, titles, places, notes, addresses) is an input: old rows and
# admin edits never passed the API's checks. Headers get ics.one_line values only, so
# nothing can end a header; the templates get plain values, never model objects, so a
# template cannot reach a secret its reader must not see (the tutor's emails carry no
# manage link: the context given to them has none).


def _zone(*names: str) -> str:
    """The first of `names` that is a real IANA zone (a stored value may not be)."""
    return next((name for name in names if name and is_timezone(name)), "UTC")


def _when(value: datetime, zone_name: str) -> str:
    local = value.astimezone(ZoneInfo(zone_name))
    return f"{local:%A %-d %B %Y, %H:%M} {local.tzname()} ({zone_name})"


SUBJECTS = {
    (NotificationKind.CONFIRMED, Recipient.STUDENT): "Confirmed: {title} with {tutor} on {date}",
    (NotificationKind.CONFIRMED, Recipient.TUTOR): "New booking: {student} on {date}",
    (NotificationKind.CANCELLED, Recipient.STUDENT): "Cancelled: {title} on {date}",
    (NotificationKind.CANCELLED, Recipient.TUTOR): "Cancelled: {student} on {date}",
    (NotificationKind.RESCHEDULED, Recipient.STUDENT): "Moved: {title} is now on {date}",
    (NotificationKind.RESCHEDULED, Recipient.TUTOR): "Moved: {student} is now on {date}",
    (NotificationKind.REMINDER, Recipient.STUDENT): "Reminder: {title} with {tutor} in {offset}",
    (NotificationKind.HOLD_EXPIRED, Recipient.STUDENT): "Your hold on {date} has expired",
    (NotificationKind.LATE_PAYMENT_REFUNDED, Recipient.STUDENT): (
        "Refunded: your payment for {date} arrived too late"
    ),
    (NotificationKind.PAYMENT_REFUSED, Recipient.STUDENT): (
        "Refunded: a payment for your session on {date} could not be accepted"
    ),
    (NotificationKind.PAYMENT_REFUSED, Recipient.TUTOR): (
        "Refunded: a payment from {student} for {date} could not be accepted"
    ),
    (NotificationKind.BUSY_CONFLICT, Recipient.TUTOR): (
        "Your calendar is busy during {student}'s session on {date}"
    ),
}
WITH_INVITE = {NotificationKind.CONFIRMED, NotificationKind.RESCHEDULED, NotificationKind.CANCELLED}
JOINING = {NotificationKind.CONFIRMED, NotificationKind.RESCHEDULED, NotificationKind.REMINDER}


def _address(value: str) -> str:
    """A stored email address fit for To/Reply-To, or ValueError (a permanent failure:
    retrying will not fix the address). Django's EmailField accepts quoted local parts
    with control characters in them ("a\\vb"@x.org), which would end the header."""
    address = value.strip()
    try:
        validate_email(address)  # one mailbox: no list, no display name
    except ValidationError:
        raise ValueError("the stored email address is not one valid address") from None
    if one_line(address) != address or " " in address:
        raise ValueError("the stored email address cannot be used in a header")
    return address


def _context(n: Notification) -> dict[str, Any]:
    """What the templates may show. The manage link is there for the student only."""
    booking, tutor, offering = n.booking, n.booking.tutor, n.booking.offering
    ctx = n.context
    to_student = n.recipient == Recipient.STUDENT
    tutor_zone = _zone(tutor.timezone)
    reader_zone = _zone(booking.student_timezone, tutor_zone) if to_student else tutor_zone
    start = datetime.fromisoformat(ctx["start"])
    end = datetime.fromisoformat(ctx["end"])
    refused_currency = ctx.get("refused_currency") or booking.currency
    context: dict[str, Any] = {
        "to_student": to_student,
        "student_name": one_line(booking.student_name, limit=200),
        "student_email": one_line(booking.student_email, limit=254),
        "tutor_name": one_line(tutor.display_name, limit=200),
        "title": one_line(offering.title, limit=200),
        "remote": booking.mode == Mode.REMOTE,
        "mode_label": Mode(booking.mode).label if booking.mode in Mode.values else "",
        # The way in, only in messages about a session that stands.
        "video_url": ics.safe_url(offering.video_url) if n.kind in JOINING else "",
        "place_name": one_line(offering.place_name),
        "place_address": one_line(offering.place_address),
        "map_link": ics.map_link(offering.place_address),
        "notes": ics.text_block(booking.notes) if not to_student else "",
        "when": _when(start, reader_zone),
        "when_tutor": _when(start, tutor_zone),
        "show_tutor_time": to_student and reader_zone != tutor_zone,
        "date": f"{start.astimezone(ZoneInfo(reader_zone)):%a %-d %b, %H:%M %Z}",
        "minutes": int((end - start).total_seconds() // 60),
        "old_when": _when(datetime.fromisoformat(ctx["old_start"]), reader_zone)
        if "old_start" in ctx
        else "",
        "tutor_url": f"{settings.PUBLIC_BASE_URL}/t/{quote(one_line(tutor.slug))}/",
        "price": format_money(booking.price_amount, booking.currency),
        "refund": format_money(ctx.get("refund_amount", 0), booking.currency),
        "refund_amount": ctx.get("refund_amount", 0),
        "cancelled_by": ctx.get("cancelled_by", ""),
        "offset": offset_label(ctx.get("offset_minutes", 0)),
        "why": ctx.get("why", ""),
        "refused": format_money(ctx.get("refused_amount", 0), refused_currency),
        "refused_why": REFUSAL_REASONS.get(
            ctx.get("why", ""), "it could not be matched to this booking"
        ),
        # What the booking is now, for messages that say where things stand.
        "status": booking.status,
        "calendar": one_line(ctx.get("calendar", ""), limit=120),
        "busy_when": _when(datetime.fromisoformat(ctx["busy_start"]), reader_zone)
        if "busy_start" in ctx
        else "",
        "busy_until": _when(datetime.fromisoformat(ctx["busy_end"]), reader_zone)
        if "busy_end" in ctx
        else "",
        "booking_url": f"{settings.PUBLIC_BASE_URL}/tutor/bookings/{booking.pk}/",
    }
    if to_student:
        context["manage_url"] = booking.manage_url
    return context


def _subject(n: Notification, context: dict[str, Any]) -> str:
    template = SUBJECTS[(n.kind, n.recipient)]  # type: ignore[index]
    subject = template.format(
        title=context["title"],
        tutor=context["tutor_name"],
        student=context["student_name"],
        date=context["date"],
        offset=context["offset"],
    )
    return one_line(subject, limit=250)


class _Email(EmailMultiAlternatives):
    """Lets a ready-made MIME part stand as an alternative: Django would re-encode a
    text/* alternative as 8bit text with the transport's line ends, and an iCalendar
    file must keep its exact UTF-8 bytes and CRLFs."""

    def _create_mime_attachment(self, content: Any, mimetype: str) -> Any:
        if isinstance(content, MIMEBase):
            return content
        return super()._create_mime_attachment(content, mimetype)  # type: ignore[misc]


def calendar_part(body: bytes, *, method: str, mimetype: str = "text/calendar") -> MIMEBase:
    """The invite's bytes as a MIME part: UTF-8 declared, METHOD in the Content-Type
    (what Outlook and Gmail key on), base64 so no relay rewraps or re-encodes it."""
    maintype, subtype = mimetype.split("/", 1)
    part = MIMEBase(maintype, subtype, charset="utf-8", method=method)
    part.set_payload(body)
    encoders.encode_base64(part)
    return part


def build_message(n: Notification, *, now: datetime) -> EmailMultiAlternatives:
    booking, tutor = n.booking, n.booking.tutor
    context = _context(n)
    to_student = context["to_student"]
    template = f"emails/{n.kind}"
    to = [_address(booking.student_email if to_student else tutor.email)]
    try:
        reply_to = [_address(tutor.email if to_student else booking.student_email)]
    except ValueError:
        reply_to = []  # the message still goes; the reader cannot reply with one click
    message = _Email(
        subject=_subject(n, context),
        body=render_to_string(f"{template}.txt", context),
        to=to,
        reply_to=reply_to,
        # Stable per row: if a crash makes us send twice, mail servers and clients
        # recognise the copy. The booking's UUID keeps it unique across databases (a
        # reused row id must never look like a message the reader already has).
        headers={"Message-ID": f"<notification-{n.pk}.{booking.pk}@{_host()}>"},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    if n.kind in WITH_INVITE:
        version = ics.Version(
            start=datetime.fromisoformat(n.context["start"]),
            end=datetime.fromisoformat(n.context["end"]),
            sequence=n.context["sequence"],
            cancelled=n.kind == NotificationKind.CANCELLED,
        )
        method = "CANCEL" if version.cancelled else "REQUEST"
        invite = ics.version_calendar(booking, version, now=now, for_tutor=not to_student)
        # The shape Gmail, Outlook and Apple Mail recognise: the calendar as a part of the
        # alternative (with its METHOD), and the same file as an invite.ics attachment.
        message.attach_alternative(calendar_part(invite, method=method), "text/calendar")
        attachment = calendar_part(invite, method=method, mimetype="application/ics")
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
        message.attach(attachment)
    return message


def _host() -> str:
    """The right-hand side of our Message-IDs: the site's host name when it is a plain
    dot-atom (an IP literal like [::1] is not), else localhost."""
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or ""
    return host if re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", host) else "localhost"


# --- sending ------------------------------------------------------------------------------


def _is_permanent(exc: Exception) -> bool:
    """5xx SMTP replies (bad address, refused sender) will not get better by retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, ValueError | UnicodeError)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at an hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


# What a booking's later messages may have said: once one of these is owed, an earlier
# "hold expired, nothing was charged" would contradict it.
_MONEY_CAME = (NotificationKind.LATE_PAYMENT_REFUNDED, NotificationKind.PAYMENT_REFUSED)


def _stale(n: Notification) -> str:
    """Why a row is no longer worth sending, or ''. One story per booking: a message
    that a later change (or a later message) contradicts is dropped at delivery, where
    the booking is read as it is now. A reminder for a moved or cancelled session is
    exactly the stale message other schedulers are known for."""
    booking = n.booking
    if n.kind == NotificationKind.REMINDER:
        if booking.status != BookingStatus.CONFIRMED:
            return f"booking is {booking.status}"
        if booking.slot.start.isoformat() != n.context.get("start"):
            return "booking was moved"
    # A reschedule or a cancellation raised the SEQUENCE: its own message says what
    # stands now, and an older invite arriving after it would put back a dead time.
    versioned = n.kind in (
        NotificationKind.CONFIRMED,
        NotificationKind.RESCHEDULED,
        NotificationKind.BUSY_CONFLICT,
    )
    if versioned and booking.sequence != n.context.get("sequence"):
        return "a newer version of the booking was announced"
    if n.kind == NotificationKind.BUSY_CONFLICT and booking.status != BookingStatus.CONFIRMED:
        return f"booking is {booking.status}"
    if n.kind == NotificationKind.HOLD_EXPIRED:
        if booking.status != BookingStatus.EXPIRED:
            return f"booking is {booking.status}"  # late money confirmed it after all
        if booking.notifications.filter(kind__in=_MONEY_CAME).exists():
            return "money came after all and was refunded: that email tells the story"
    return ""


def deliver(notification_id: int, *, now: datetime) -> str:
    """Send one due row if this caller wins the claim. Returns what happened."""
    claimed = Notification.objects.filter(
        pk=notification_id, state=NotificationState.PENDING, due_at__lte=now
    ).update(state=NotificationState.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "not claimed"
    n = Notification.objects.select_related(
        "booking", "booking__tutor", "booking__offering", "booking__slot"
    ).get(pk=notification_id)
    mine = Notification.objects.filter(pk=n.pk, state=NotificationState.SENDING)
    reason = _stale(n)
    if reason:
        mine.update(state=NotificationState.VOID, last_error=reason)
        return "void"
    try:
        message = build_message(n, now=now)
        message.connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
        message.send()
    except Exception as exc:
        # A bug (a template error, say) is not the mail server's fault and will not heal
        # by retrying: fail the row visibly instead of looping.
        bug = not isinstance(exc, OSError | smtplib.SMTPException | ValueError | UnicodeError)
        if bug:
            logger.exception("notification %s cannot be built or sent", n.pk)
        give_up = bug or _is_permanent(exc) or n.attempts >= MAX_ATTEMPTS
        mine.update(
            state=NotificationState.FAILED if give_up else NotificationState.PENDING,
            due_at=now + backoff(n.attempts),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        logger.warning("notification %s attempt %s failed: %s", n.pk, n.attempts, exc)
        return "failed" if give_up else "retry"
    mine.update(state=NotificationState.SENT, sent_at=now, last_error="")
    logger.info("notification %s (%s to %s) sent", n.pk, n.kind, n.recipient)
    return "sent"


def reclaim_abandoned(*, now: datetime) -> int:
    """Rows a crashed worker left 'sending' past their lease go back to pending."""
    return Notification.objects.filter(
        state=NotificationState.SENDING, claimed_at__lt=now - LEASE
    ).update(state=NotificationState.PENDING)


def due_ids(*, now: datetime, limit: int = 500) -> list[int]:
    """The sweep's selection: pending rows whose time has come (a partial index)."""
    return list(
        Notification.objects.filter(state=NotificationState.PENDING, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )


def sweep(*, now: datetime, budget_seconds: float = 60.0) -> dict[str, int]:
    """Send everything due. Safe to run in several processes at once: claims decide."""
    counts: dict[str, int] = {"reclaimed": reclaim_abandoned(now=now)}
    deadline = monotonic_time.monotonic() + budget_seconds
    for pk in due_ids(now=now):
        outcome = deliver(pk, now=now)
        counts[outcome] = counts.get(outcome, 0) + 1
        if monotonic_time.monotonic() > deadline:
            break  # the next sweep carries on; the task's time limit stays far away
    return counts


def schedule_retry(notification_id: int) -> None:
    """Try again when the backoff is over (the minute sweep is the safety net)."""
    due = (
        Notification.objects.filter(pk=notification_id, state=NotificationState.PENDING)
        .values_list("due_at", flat=True)
        .first()
    )
    if due is None:
        return
    try:
        deliver_notification.apply_async((notification_id,), eta=due)
    except Exception:
        logger.warning("could not schedule retry of notification %s", notification_id)
