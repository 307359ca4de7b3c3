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
import smtplib
import time as monotonic_time
from datetime import datetime, timedelta
from email import encoders
from email.mime.base import MIMEBase
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse

from . import ics, zones
from .calendar_links import booking_calendar_links
from .ics import one_line, text_block
from .models import (
    Actor,
    Booking,
    BookingSeries,
    BookingStatus,
    Mode,
    Notification,
    NotificationKind,
    NotificationState,
    Recipient,
    TimeRequestEmail,
)
from .money import format_money
from .policy import free_cancellation_until
from .queueing import deliver_notification

logger = logging.getLogger(__name__)

# A claimed row whose sender has not finished after this long is handed out again.
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


def reminder_offsets() -> list[timedelta]:
    return [timedelta(minutes=m) for m in settings.BOOKING_REMINDER_OFFSETS_MINUTES]


def offset_label(minutes: int) -> str:
    """How long before the start a reminder is sent, in absolute time: "24 hours", not
    "1 day" (across a clock change the day before is 23 or 25 hours long)."""
    if minutes % 1440 == 0 and minutes > 1440:
        return f"{minutes // 1440} days"
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


def void_reminders(booking: Booking) -> int:
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
    """The confirmation to student and tutor, and the session's reminders. A weekly
    series is confirmed in one go and told once: the first of its sessions to be
    confirmed carries the confirmation (its invite is the whole series, see
    _attach_invite); each session still gets its own reminders."""
    rows = _due_now(booking, NotificationKind.CONFIRMED, *BOTH, now=now, key="1")
    if (
        booking.series_id is not None
        and Notification.objects.filter(
            booking__series_id=booking.series_id, kind=NotificationKind.CONFIRMED
        ).exists()
    ):
        rows = []
    _owe(booking, rows + _reminders(booking, now=now), now=now)


# The longest message from the tutor a cancellation email quotes (the web form's own
# limit is lower; this bounds what an old row or another caller could bring).
REASON_LIMIT = 500


def notify_cancelled(
    booking: Booking,
    *,
    now: datetime,
    refund_amount: int,
    by: str,
    reason: str = "",
    prepaid: bool = False,
    credit_returned: bool = False,
) -> None:
    """`reason`: what the tutor wrote when cancelling, forwarded to the student (a
    student's or the system's reason is only logged: nobody else needs it). `prepaid`:
    paid with a package credit, which came back (`credit_returned`) or stays spent."""
    void_reminders(booking)
    extra: dict[str, Any] = {"refund_amount": refund_amount, "cancelled_by": by}
    if prepaid:
        extra |= {"prepaid": True, "credit_returned": credit_returned}
    if by == Actor.TUTOR and (message := text_block(reason)[:REASON_LIMIT].strip()):
        extra["reason"] = message
    key = str(booking.sequence)
    rows = _due_now(booking, NotificationKind.CANCELLED, *BOTH, now=now, key=key, extra=extra)
    _owe(booking, rows, now=now)


def notify_rest_cancelled(sessions: list[Booking], *, now: datetime, by: str) -> None:
    """The rest of a weekly series was cancelled (series_cancel_rest): one email to the
    student and one to the tutor for all those sessions (`sessions`, the confirmed ones
    it cancelled, earliest first), with their total refund, carried by the first of
    them. Owing it again owes nothing (the key names the cancel-rest, and
    series_cancel_rest can cancel the rest only once)."""
    if not sessions:
        return
    first = sessions[0]
    extra: dict[str, Any] = {
        "refund_amount": sum(b.refund_amount for b in sessions),
        "cancelled_by": by,
        "rest_weeks": [b.series_week for b in sessions],
    }
    rows = _due_now(first, NotificationKind.CANCELLED, *BOTH, now=now, key="rest", extra=extra)
    _owe(first, rows, now=now)


def notify_rescheduled(
    booking: Booking, *, now: datetime, old_start: datetime, by: str = "student"
) -> None:
    void_reminders(booking)
    extra = {"old_start": old_start.isoformat(), "rescheduled_by": by}
    key = str(booking.sequence)
    rows = _due_now(booking, NotificationKind.RESCHEDULED, *BOTH, now=now, key=key, extra=extra)
    _owe(booking, rows + _reminders(booking, now=now), now=now)


def hold_expired_email_delay() -> timedelta:
    return timedelta(minutes=settings.BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES)


def notify_hold_expired(booking: Booking, *, now: datetime) -> None:
    """Owed a little later than the expiry: a student still on the checkout page may pay
    in the next minutes, and "nothing was charged" must not be followed by "confirmed"
    or "refunded". Delivery drops it if that happened (see _stale).

    A weekly series' holds expire together, one session at a time: the first to expire
    carries one email about all of them (the series row is locked while asking, so two
    sweepers cannot both owe it)."""
    context = _version(booking)
    if booking.series_id is not None:
        list(BookingSeries.objects.select_for_update().filter(pk=booking.series_id).values("pk"))
        if Notification.objects.filter(
            booking__series_id=booking.series_id, kind=NotificationKind.HOLD_EXPIRED
        ).exists():
            return
        held = (
            Booking.objects.filter(
                series_id=booking.series_id,
                status__in=(BookingStatus.PENDING_PAYMENT, BookingStatus.EXPIRED),
            )
            .order_by("series_week")
            .values_list("slot__start", flat=True)
        )
        context["week_starts"] = [start.isoformat() for start in held]
    row = _row(
        booking,
        NotificationKind.HOLD_EXPIRED,
        Recipient.STUDENT,
        key="1",
        due_at=now + hold_expired_email_delay(),
        context=context,
    )
    _owe(booking, [row], now=now)


def notify_late_payment_refunded(
    booking: Booking,
    *,
    now: datetime,
    amount: int,
    why: str = "taken",
    sessions: list[Booking] | None = None,
) -> None:
    """Money came too late for `booking` and was refunded (`amount`). `sessions`: the
    weeks of a series that one payment was for and could not have, told in one email
    (carried by `booking`, the first of them) with their total."""
    extra: dict[str, Any] = {"refund_amount": amount, "why": why}
    if sessions:
        extra["week_starts"] = [b.slot.start.isoformat() for b in sessions]
    rows = _due_now(
        booking,
        NotificationKind.LATE_PAYMENT_REFUNDED,
        Recipient.STUDENT,
        now=now,
        key="1",
        extra=extra,
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


def notify_pick_another_time(booking: Booking, *, now: datetime, message: str) -> bool:
    """The tutor asks the student to move this confirmed session to another time (their
    reschedule page), with an optional message. Once per version of the booking: a move
    answers it. True if this call owed it (False: already asked about this version)."""
    key = str(booking.sequence)
    kind = NotificationKind.PICK_ANOTHER_TIME
    if Notification.objects.filter(booking=booking, kind=kind, key=key).exists():
        return False
    extra = {"message": message}
    rows = _due_now(booking, kind, Recipient.STUDENT, now=now, key=key, extra=extra)
    _owe(booking, rows, now=now)
    return True


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


_zone = zones.zone_or_utc


def _when(value: datetime, zone_name: str) -> str:
    return zones.when(value, zone_name)


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
    (NotificationKind.PICK_ANOTHER_TIME, Recipient.STUDENT): (
        "{tutor} asks you to pick another time for {date}"
    ),
}
WITH_INVITE = {NotificationKind.CONFIRMED, NotificationKind.RESCHEDULED, NotificationKind.CANCELLED}
JOINING = {NotificationKind.CONFIRMED, NotificationKind.RESCHEDULED, NotificationKind.REMINDER}
# Messages about a session that is off, never was, or about money: their manage link
# is only "the booking's page", never an invitation to cancel or move.
SETTLED = {
    NotificationKind.CANCELLED,
    NotificationKind.HOLD_EXPIRED,
    NotificationKind.LATE_PAYMENT_REFUNDED,
    NotificationKind.PAYMENT_REFUSED,
}


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


def _other_times(
    booking: Booking, start: datetime, *, to_student: bool, reader_zone: str, tutor_zone: str
) -> list[str]:
    """The session's start where else it matters, in zones other than the reader's: at
    the meeting place (in person), the tutor's (for a student, remote), the student's
    (for the tutor)."""
    student_zone = _zone(booking.student_timezone, tutor_zone)
    wanted: list[tuple[str, str]] = []
    if booking.mode == Mode.IN_PERSON:
        wanted.append((zones.PLACE_ZONE, "at the meeting place"))
    elif to_student:
        wanted.append((tutor_zone, f"for {one_line(booking.tutor.display_name, limit=200)}"))
    if not to_student:
        wanted.append((student_zone, f"for {one_line(booking.student_name, limit=200)}"))
    lines, shown = [], {reader_zone}
    for zone, whose in wanted:
        if zone not in shown:
            shown.add(zone)
            lines.append(f"{zones.when(start, zone, short=True)} {whose}")
    return lines


def _context(n: Notification, *, now: datetime | None = None) -> dict[str, Any]:
    """What the templates may show. The manage link is there for the student only.

    `now` (default: when the row fell due) says whether the free-cancellation deadline
    has passed."""
    booking, tutor, offering = n.booking, n.booking.tutor, n.booking.offering
    ctx = n.context
    now = now or n.due_at
    to_student = n.recipient == Recipient.STUDENT
    tutor_zone = _zone(tutor.timezone)
    reader_zone = _zone(booking.student_timezone, tutor_zone) if to_student else tutor_zone
    start = datetime.fromisoformat(ctx["start"])
    end = datetime.fromisoformat(ctx["end"])
    deadline = free_cancellation_until(booking)
    stands = n.kind not in SETTLED and booking.status == BookingStatus.CONFIRMED
    refused_currency = ctx.get("refused_currency") or booking.currency
    context: dict[str, Any] = {
        "to_student": to_student,
        "student_name": one_line(booking.student_name, limit=200),
        "student_email": one_line(booking.student_email, limit=254),
        "tutor_name": one_line(tutor.display_name, limit=200),
        "title": one_line(offering.title, limit=200),
        "remote": booking.mode == Mode.REMOTE,
        "how": "Video call" if booking.mode == Mode.REMOTE else "In person",
        # The way in, only in messages about a session that stands.
        "video_url": ics.safe_url(offering.video_url) if n.kind in JOINING else "",
        "place_name": one_line(offering.place_name),
        "place_address": one_line(offering.place_address),
        "map_link": ics.map_link(offering.place_address),
        "notes": ics.text_block(booking.notes) if not to_student else "",
        "when": zones.when(start, reader_zone, end=end),
        "other_times": _other_times(
            booking, start, to_student=to_student, reader_zone=reader_zone, tutor_zone=tutor_zone
        ),
        "date": zones.when(start, reader_zone, short=True),
        # The cancellation policy as the manage page applies it (bookings.policy).
        "free_until": zones.when(deadline, reader_zone, short=True),
        "stands": stands,
        "refund_hours": tutor.full_refund_hours,
        "can_change": stands and now <= deadline,
        "minutes": int((end - start).total_seconds() // 60),
        # "Add to Google Calendar / Outlook.com" (the confirmation); no manage link in them.
        "calendar_links": booking_calendar_links(booking, start=start, end=end)
        if to_student
        else None,
        "old_when": _when(datetime.fromisoformat(ctx["old_start"]), reader_zone)
        if "old_start" in ctx
        else "",
        "tutor_url": f"{settings.PUBLIC_BASE_URL}/t/{quote(one_line(tutor.slug))}/",
        "price": format_money(booking.price_amount, booking.currency),
        "refund": format_money(ctx.get("refund_amount", 0), booking.currency),
        "refund_amount": ctx.get("refund_amount", 0),
        "cancelled_by": ctx.get("cancelled_by", ""),
        # Paid with a package credit: the credit came back, or stays spent; no money.
        "prepaid": bool(ctx.get("prepaid")),
        "credit_returned": bool(ctx.get("credit_returned")),
        # The rest of a weekly series, cancelled at once: one email for these weeks.
        "rest_count": len(ctx.get("rest_weeks", [])),
        # A weekly series' sessions told about in one email (an expired series hold,
        # late money refunded for several weeks): each in the reader's zone.
        "weeks": [
            zones.when(datetime.fromisoformat(w), reader_zone, short=True)
            for w in ctx.get("week_starts", [])
        ],
        "reason": text_block(ctx.get("reason", ""))[:REASON_LIMIT],
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
        "booking_url": settings.PUBLIC_BASE_URL + reverse("web:tutor-booking", args=[booking.pk]),
        "rescheduled_by": ctx.get("rescheduled_by", "student"),
        "tutor_message": ics.text_block(ctx.get("message", "")),
    }
    if to_student:
        context["manage_url"] = booking.manage_url
    if context["rest_count"]:
        context["when"] = f"{context['rest_count']} weekly sessions from {context['when']}"
    if booking.series_id is not None and n.kind in SERIES_SUMMARY:
        context["series"] = _series_summary(
            booking, reader_zone=reader_zone, these=ctx.get("rest_weeks", [])
        )
        context["series"]["confirmation"] = n.kind == NotificationKind.CONFIRMED
        # The student's page for the whole series (bookings/web/series_views.py).
        if to_student and (series := booking.series) is not None:
            path = reverse("web:series", args=[series.manage_token])
            context["series"]["url"] = settings.PUBLIC_BASE_URL + path
    return context


# Messages about a week of a series that list the whole series, as it stands when sent.
SERIES_SUMMARY = {NotificationKind.CONFIRMED, NotificationKind.CANCELLED}


def _series_summary(
    booking: Booking, *, reader_zone: str, these: list[int] | None = None
) -> dict[str, Any]:
    """The series `booking` is a week of: its sessions (lapsed holds were never any),
    each in the reader's zone with its status, how many, and the one payment's total.
    The message is about `booking`, or about the weeks `these` when given."""
    marked = set(these or [booking.series_week or 0])
    sessions = list(
        Booking.objects.filter(series_id=booking.series_id)
        .exclude(status=BookingStatus.EXPIRED)
        .select_related("slot")
        .order_by("series_week")
    )
    return {
        "count": len(sessions),
        "total": format_money(sum(b.price_amount for b in sessions), booking.currency),
        "sessions": [
            {
                "week": b.series_week,
                "when": zones.when(b.slot.start, reader_zone, short=True),
                "cancelled": b.status == BookingStatus.CANCELLED,
                "this": b.series_week in marked,
            }
            for b in sessions
        ],
    }


# A message about several sessions of a weekly series at once.
SERIES_SUBJECTS = {
    (NotificationKind.CANCELLED, Recipient.STUDENT): (
        "Cancelled: the rest of your weekly {title}, from {date}"
    ),
    (NotificationKind.CANCELLED, Recipient.TUTOR): (
        "Cancelled: {student}'s weekly sessions from {date}"
    ),
    (NotificationKind.HOLD_EXPIRED, Recipient.STUDENT): (
        "Your hold on a weekly series from {date} has expired"
    ),
    (NotificationKind.LATE_PAYMENT_REFUNDED, Recipient.STUDENT): (
        "Refunded: your payment for weekly sessions from {date} arrived too late"
    ),
}


def _subject(n: Notification, context: dict[str, Any]) -> str:
    several = context["rest_count"] or context["weeks"]
    subjects = SERIES_SUBJECTS if several else SUBJECTS
    template = subjects[(n.kind, n.recipient)]  # type: ignore[index]
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


def _thread_root(n: Notification) -> str:
    """The Message-ID of the confirmation this reader got about the booking, which its
    later emails reply to (In-Reply-To, References) so mail clients keep them together;
    "" for the confirmation itself or a booking never confirmed."""
    if n.kind == NotificationKind.CONFIRMED:
        return ""
    root = (
        Notification.objects.filter(
            booking_id=n.booking_id,
            recipient=n.recipient,
            kind=NotificationKind.CONFIRMED,
            state=NotificationState.SENT,
        )
        .values_list("message_id", flat=True)
        .first()
    )
    return root or ""


def _attach_invite(message: EmailMultiAlternatives, n: Notification, *, to_student: bool) -> None:
    """The invite the message carries (see bookings.ics for the iTIP choices).

    The student's: the shape Gmail, Outlook and Apple Mail recognise as an invitation,
    the calendar as a part of the alternative (with its METHOD) and the same file as an
    invite.ics attachment. The tutor's: the feed's event as a PUBLISH attachment only,
    which no client adds by itself (the tutor's feed already holds it)."""
    if (series := n.booking.series) is not None:
        _attach_series_invite(message, n, series, to_student=to_student)
        return
    version = ics.Version(
        start=datetime.fromisoformat(n.context["start"]),
        end=datetime.fromisoformat(n.context["end"]),
        sequence=n.context["sequence"],
        cancelled=n.kind == NotificationKind.CANCELLED,
    )
    for_tutor = not to_student
    method = ics.method_of(cancelled=version.cancelled, for_tutor=for_tutor)
    # DTSTAMP: when the message became owed, the same on every retry of the row.
    invite = ics.version_calendar(n.booking, version, stamp=n.created_at, for_tutor=for_tutor)
    if to_student:
        message.attach_alternative(calendar_part(invite, method=method), "text/calendar")
    attachment = calendar_part(invite, method=method, mimetype="application/ics")
    name = "session.ics" if for_tutor else "invite.ics"
    attachment.add_header("Content-Disposition", "attachment", filename=name)
    message.attach(attachment)


def _attach_series_invite(
    message: EmailMultiAlternatives, n: Notification, series: BookingSeries, *, to_student: bool
) -> None:
    """A session of a weekly series: every message carries the whole series as it
    stands when sent (bookings.ics.series_calendar), so the student's calendar keeps
    one recurring event whose exceptions follow each cancellation and move."""
    sessions = list(
        Booking.objects.filter(series=series)
        .select_related("slot", "tutor", "offering")
        .order_by("series_week")
    )
    for_tutor = not to_student
    method = ics.series_method(sessions, for_tutor=for_tutor)
    invite = ics.series_calendar(series, sessions, stamp=n.created_at, for_tutor=for_tutor)
    if to_student:
        message.attach_alternative(calendar_part(invite, method=method), "text/calendar")
    attachment = calendar_part(invite, method=method, mimetype="application/ics")
    name = "series.ics" if for_tutor else "invite.ics"
    attachment.add_header("Content-Disposition", "attachment", filename=name)
    message.attach(attachment)


def build_message(n: Notification, *, now: datetime) -> EmailMultiAlternatives:
    booking, tutor = n.booking, n.booking.tutor
    context = _context(n, now=now)
    to_student = context["to_student"]
    template = f"emails/{n.kind}"
    to = [_address(booking.student_email if to_student else tutor.email)]
    try:
        reply_to = [_address(tutor.email if to_student else booking.student_email)]
    except ValueError:
        reply_to = []  # the message still goes; the reader cannot reply with one click
    # Stored per row and random: a resend after a crash carries the same one, so mail
    # servers and clients recognise the copy, and no other database, site address or
    # reused row id can ever make one the reader already has.
    headers = {"Message-ID": f"<{n.message_id}>"}
    if root := _thread_root(n):
        headers["In-Reply-To"] = headers["References"] = f"<{root}>"
    message = _Email(
        subject=_subject(n, context),
        body=render_to_string(f"{template}.txt", context),
        # The address the invites' ORGANIZER names as SENT-BY (bookings.ics).
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=reply_to,
        headers=headers,
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    if n.kind in WITH_INVITE:
        _attach_invite(message, n, to_student=to_student)
    return message


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
        NotificationKind.PICK_ANOTHER_TIME,
    )
    if versioned and booking.sequence != n.context.get("sequence"):
        return "a newer version of the booking was announced"
    standing = (NotificationKind.BUSY_CONFLICT, NotificationKind.PICK_ANOTHER_TIME)
    if n.kind in standing and booking.status != BookingStatus.CONFIRMED:
        return f"booking is {booking.status}"
    if n.kind == NotificationKind.HOLD_EXPIRED:
        if booking.status != BookingStatus.EXPIRED:
            return f"booking is {booking.status}"  # late money confirmed it after all
        told = (
            Notification.objects.filter(booking__series_id=booking.series_id)
            if booking.series_id is not None
            else booking.notifications
        )
        if told.filter(kind__in=_MONEY_CAME).exists():
            return "money came after all and was refunded: that email tells the story"
    return ""


def claim(outbox: type[Notification | TimeRequestEmail], pk: int, *, now: datetime) -> bool:
    """Take one due row of an outbox (Notification or TimeRequestEmail) for sending.
    A conditional update: of two workers only one gets the row."""
    claimed = outbox.objects.filter(pk=pk, state=NotificationState.PENDING, due_at__lte=now).update(
        state=NotificationState.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    return bool(claimed)


def failed(
    mine: QuerySet[Any], exc: Exception, *, attempts: int, now: datetime, bug: bool = False
) -> str:
    """Record a failed send on the claimed row (`mine`): back to pending after the
    backoff, or failed for good when retrying cannot help (a bug, a permanent refusal,
    attempts used up). Returns "retry" or "failed"."""
    give_up = bug or _is_permanent(exc) or attempts >= MAX_ATTEMPTS
    mine.update(
        state=NotificationState.FAILED if give_up else NotificationState.PENDING,
        due_at=now + backoff(attempts),
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
    )
    return "failed" if give_up else "retry"


def deliver(notification_id: int, *, now: datetime) -> str:
    """Send one due row if this caller wins the claim. Returns what happened."""
    if not claim(Notification, notification_id, now=now):
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
        logger.warning("notification %s attempt %s failed: %s", n.pk, n.attempts, exc)
        return failed(mine, exc, attempts=n.attempts, now=now, bug=bug)
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
