"""Requested times (issue 14): a student who finds no listed time proposes up to three,
the tutor accepts one (a private one-off slot, held through a private link) or declines.

Writes, reads and the request emails live here, beside the booking services they lean
on (like bookings.series): the private slot is made by services.slot_create_one_off
(overlaps, blocked periods) and checked with availability.decide (notice, travel
buffer, the tutor's own calendars) exactly as a hold will check it; the student holds
it with services.booking_hold and pays through the normal checkout.

A private slot (Slot.source PRIVATE) is listed nowhere public: selectors.open_slots,
the slot lists' ETag horizon (bookings.conditional) and weekly series skip it, and a
hold by its id answers "no such slot" unless it comes through the link (`private=True`).

Every function takes `now`, is keyword-only and safe to repeat: answers lock the
request row and check its state; the emails go through their own outbox
(TimeRequestEmail), claimed with a conditional update like bookings.notifications.
"""

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from celery import Task
from celery.local import Proxy
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse

from . import notifications, queueing, services, sql, tokens, validation, zones
from .availability import Closed, decide, horizon_end
from .errors import ApplicationError, NotFound, SlotUnavailable
from .ics import one_line, text_block
from .models import (
    ACTIVE_STATUSES,
    MAX_REQUESTED_TIMES,
    Booking,
    BookingStatus,
    NotificationState,
    Offering,
    SlotRemoval,
    SlotSource,
    TimeRequest,
    TimeRequestEmail,
    TimeRequestEmailKind,
    TimeRequestStatus,
    Tutor,
    is_timezone,
)
from .money import format_money
from .payment_port import payment_port

logger = logging.getLogger(__name__)

# Bookings that keep a private slot in use: its offer is not swept while one exists.
_USING = (*ACTIVE_STATUSES, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)
DECLINE_MESSAGE_MAX_LENGTH = validation.NOTES_MAX_LENGTH


# --- the student asks -----------------------------------------------------------------------


def _clean_text(value: str, field: str, *, limit: int, multiline: bool, name: bool = False) -> str:
    """The edges already checked it; a service called directly gets the same rules."""
    text = validation.normalise_text(value or "", multiline=multiline)
    try:
        if name:
            validation.check_name(text)
        else:
            validation.check_text(text, multiline=multiline)
    except ValidationError as exc:
        raise ApplicationError("invalid", exc.messages[0], fields={field: exc.messages}) from None
    if len(text) > limit:
        message = f"Keep it to {limit} characters."
        raise ApplicationError("invalid", message, fields={field: [message]})
    return text


class TimesRefused(ApplicationError):
    """Some proposed times cannot be booked; `by_index` says which (0-based) and why,
    so a form can put each message beside its own field."""

    def __init__(self, by_index: dict[int, str]) -> None:
        fields = {"times": [f"Time {i + 1}: {m}" for i, m in sorted(by_index.items())]}
        super().__init__("invalid", fields["times"][0], fields=fields)
        self.by_index = by_index


def _check_times(
    tutor: Tutor, times: list[datetime], *, now: datetime, zone: str
) -> list[datetime]:
    """One to three distinct starts, each bookable as far as the clock goes: after the
    tutor's minimum notice and before the end of their booking horizon. Messages name
    moments in the student's zone."""
    if not 1 <= len(times) <= MAX_REQUESTED_TIMES:
        message = f"Propose from 1 to {MAX_REQUESTED_TIMES} times."
        raise ApplicationError("invalid", message, fields={"times": [message]})
    earliest = now + tutor.min_notice
    latest = horizon_end(tutor, now)
    reader = zones.zone_or_utc(zone, tutor.timezone)
    refused: dict[int, str] = {}
    for i, moment in enumerate(times):
        if moment.tzinfo is None:
            refused[i] = "Give its time zone offset."
        elif moment <= now:
            refused[i] = "That time has already passed."
        elif moment < earliest:
            refused[i] = (
                f"That is too soon: {tutor.display_name} needs "
                f"{tutor.min_notice_minutes / 60:g} hours' notice (from "
                f"{zones.when(earliest, reader, short=True)})."
            )
        elif moment >= latest:
            refused[i] = (
                f"That is too far ahead: {tutor.display_name} takes bookings up to "
                f"{zones.when(latest, reader, short=True)}."
            )
        elif moment in times[:i]:
            refused[i] = "You proposed this time already."
    if refused:
        raise TimesRefused(refused)
    return [validation.to_utc(t) for t in times]


def _advisory_lock(*keys: str) -> None:
    """PostgreSQL: serialise requests per student and client across tutors, so their
    limits count every request (SQLite's IMMEDIATE transactions already serialise)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in keys:
            if key:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def time_request_create(
    *,
    tutor: Tutor,
    offering_id: int,
    times: list[datetime],
    student_name: str,
    student_email: str,
    now: datetime,
    note: str = "",
    student_timezone: str = "",
    client: str = "",
) -> TimeRequest:
    """A student proposes up to three times for one of the tutor's offerings.

    At most REQUEST_MAX_PENDING_PER_EMAIL pending requests per email and
    REQUEST_MAX_PENDING_PER_CLIENT per network address (services.client_digest), like
    the limits on unpaid holds. The tutor is emailed.
    """
    name = _clean_text(
        student_name, "student_name", limit=validation.NAME_MAX_LENGTH, multiline=False, name=True
    )
    if not name:
        raise ApplicationError(
            "invalid", "Tell us your name.", fields={"student_name": ["Required."]}
        )
    email = _clean_text(
        student_email, "student_email", limit=validation.EMAIL_MAX_LENGTH, multiline=False
    ).lower()
    note = _clean_text(note, "note", limit=validation.NOTES_MAX_LENGTH, multiline=True)
    zone = student_timezone if student_timezone and is_timezone(student_timezone) else ""
    if not tutor.is_active:
        raise NotFound("No tutor with that name.")
    offering = Offering.objects.filter(pk=offering_id, tutor=tutor, is_active=True).first()
    if offering is None:
        raise ApplicationError(
            "invalid",
            "Choose one of the tutor's sessions.",
            fields={"offering": ["No such session."]},
        )
    starts = _check_times(tutor, times, now=now, zone=zone)
    digest = services.client_digest(client)
    with transaction.atomic():
        Tutor.objects.select_for_update().get(pk=tutor.pk)
        _advisory_lock(f"request-email:{email}", f"request-client:{digest}" if digest else "")
        pending = TimeRequest.objects.filter(status=TimeRequestStatus.PENDING)
        if pending.filter(student_email=email).count() >= settings.REQUEST_MAX_PENDING_PER_EMAIL:
            raise ApplicationError(
                "too_many_requests",
                "You already have "
                f"{settings.REQUEST_MAX_PENDING_PER_EMAIL} requests waiting for an answer. "
                "Wait for a tutor to answer one first.",
                status=409,
            )
        if (
            digest
            and pending.filter(client_digest=digest).count()
            >= settings.REQUEST_MAX_PENDING_PER_CLIENT
        ):
            raise ApplicationError(
                "too_many_requests",
                "Too many requests from your network are waiting for an answer. "
                "Please try again later.",
                status=409,
            )
        later: list[datetime | None] = [*starts[1:], None, None]
        request = TimeRequest.objects.create(
            tutor=tutor,
            offering=offering,
            student_name=name,
            student_email=email,
            student_timezone=zone,
            note=note,
            time_1=starts[0],
            time_2=later[0],
            time_3=later[1],
            client_digest=digest,
            created_at=now,
        )
        _owe(request, TimeRequestEmailKind.RECEIVED, now=now)
    return request


# --- the tutor answers ----------------------------------------------------------------------


def _locked(tutor: Tutor, request_id: int) -> TimeRequest:
    request = (
        TimeRequest.objects.select_for_update(of=("self",))
        .select_related("tutor", "offering")
        .filter(pk=request_id, tutor=tutor)
        .first()
    )
    if request is None:
        raise NotFound("No such request.")
    return request


def _answered(request: TimeRequest) -> ApplicationError:
    return ApplicationError(
        "request_answered",
        f"This request is already {request.get_status_display().lower()}.",
        status=409,
        reason=request.status,
    )


def offer_ends(request: TimeRequest, start: datetime, *, now: datetime) -> datetime:
    """REQUEST_OFFER_HOURS from the answer, but never past the moment the tutor's
    minimum notice would refuse the hold anyway."""
    return min(
        now + timedelta(hours=settings.REQUEST_OFFER_HOURS), start - request.tutor.min_notice
    )


def time_request_accept(
    *, tutor: Tutor, request_id: int, choice: int, now: datetime
) -> TimeRequest:
    """The tutor takes proposed time `choice` (1 to 3): a private one-off slot is made
    and the student emailed a link to hold and pay it. Refused, with decide()'s reason,
    when the time can no longer be booked (too soon, booked or busy nearby...)."""
    with transaction.atomic():
        request = _locked(tutor, request_id)
        if request.status == TimeRequestStatus.ACCEPTED and request.accepted_choice == choice:
            return request  # the same click twice
        if request.status != TimeRequestStatus.PENDING:
            raise _answered(request)
        times = request.times
        if not 1 <= choice <= len(times):
            message = f"Choose one of the {len(times)} proposed times."
            raise ApplicationError("invalid", message, fields={"choice": [message]})
        start = times[choice - 1]
        offering = request.offering
        if not offering.is_active:
            raise ApplicationError(
                "offering_inactive",
                f"You no longer offer {offering.title}: reactivate it, or decline.",
                status=409,
            )
        # The tutor's own slot rules (past, overlap with a slot, blocked period)...
        slot = services.slot_create_one_off(
            tutor=tutor, start=start, offerings=[offering], now=now, source=SlotSource.PRIVATE
        )
        # ...and the ones the student's hold will apply (notice, bookings and travel
        # buffer, the tutor's own calendars). Raising rolls the slot back.
        around = sql.busy_around(slot, margin=tutor.travel_buffer, now=now)
        decision = decide(slot, mode=offering.mode, now=now, busy=around.busy)
        if isinstance(decision, Closed):
            raise ApplicationError(
                "time_unavailable", decision.message, status=409, reason=decision.reason
            )
        request.status = TimeRequestStatus.ACCEPTED
        request.accepted_choice = choice
        request.slot = slot
        request.offer_expires_at = offer_ends(request, start, now=now)
        request.answered_at = now
        request.save(
            update_fields=["status", "accepted_choice", "slot", "offer_expires_at", "answered_at"]
        )
        _owe(request, TimeRequestEmailKind.OFFERED, now=now)
    return request


def time_request_decline(
    *, tutor: Tutor, request_id: int, message: str, now: datetime
) -> TimeRequest:
    """The tutor says no, with a message the student is emailed."""
    text = _clean_text(message, "message", limit=DECLINE_MESSAGE_MAX_LENGTH, multiline=True)
    with transaction.atomic():
        request = _locked(tutor, request_id)
        if request.status == TimeRequestStatus.DECLINED:
            return request
        if request.status != TimeRequestStatus.PENDING:
            raise _answered(request)
        request.status = TimeRequestStatus.DECLINED
        request.decline_message = text
        request.answered_at = now
        request.save(update_fields=["status", "decline_message", "answered_at"])
        _owe(request, TimeRequestEmailKind.DECLINED, now=now)
    return request


# --- expiry ---------------------------------------------------------------------------------


def _times_passed(now: datetime) -> Q:
    return (
        Q(time_1__lte=now)
        & (Q(time_2__isnull=True) | Q(time_2__lte=now))
        & (Q(time_3__isnull=True) | Q(time_3__lte=now))
    )


def _offer_expire(request_id: int, *, now: datetime) -> bool:
    """Withdraw one unused private slot whose offer is over. True if this call did."""
    with transaction.atomic():
        request = (
            TimeRequest.objects.select_for_update(of=("self",))
            .select_related("slot")
            .filter(pk=request_id)
            .first()
        )
        if request is None or request.status != TimeRequestStatus.ACCEPTED:
            return False
        if request.offer_expires_at is None or request.offer_expires_at > now:
            return False
        # Holds take the tutor's lock too: none can start between this check and the
        # withdrawal.
        Tutor.objects.select_for_update().get(pk=request.tutor_id)
        slot = request.slot
        if slot is None:
            return False
        if Booking.objects.filter(slot=slot, status__in=_USING).exists():
            return False  # held (the hold's own expiry comes first) or booked: it stays
        if slot.removed_at is None:
            slot.removed_at, slot.removed_reason = now, SlotRemoval.DELETED
            slot.save(update_fields=["removed_at", "removed_reason"])
        request.status = TimeRequestStatus.EXPIRED
        request.save(update_fields=["status"])
    return True


def time_requests_expire(*, now: datetime) -> int:
    """The sweeper: pending requests whose proposed times have all passed, and private
    slots nobody held before their offer ended. Safe to run twice or concurrently."""
    stale = TimeRequest.objects.filter(_times_passed(now), status=TimeRequestStatus.PENDING)
    count = stale.update(status=TimeRequestStatus.EXPIRED)
    using = Booking.objects.filter(slot_id=OuterRef("slot_id"), status__in=_USING)
    due = (
        TimeRequest.objects.filter(status=TimeRequestStatus.ACCEPTED, offer_expires_at__lte=now)
        .filter(~Exists(using))
        .values_list("pk", flat=True)
    )
    return count + sum(_offer_expire(pk, now=now) for pk in list(due))


# --- the student holds the offered time -----------------------------------------------------


def request_by_offer_token(token: str) -> TimeRequest:
    """The request behind a private offer link (signed, bookings.tokens)."""
    key = tokens.key_of("offer", token)
    request = (
        TimeRequest.objects.select_related("tutor", "offering", "slot")
        .filter(offer_key=key)
        .first()
        if key is not None
        else None
    )
    if request is None or request.slot is None:
        raise NotFound("No offer for that link.")
    return request


def offer_open(request: TimeRequest, *, now: datetime) -> bool:
    return (
        request.status == TimeRequestStatus.ACCEPTED
        and request.offer_expires_at is not None
        and request.offer_expires_at > now
    )


def offer_booking(request: TimeRequest) -> Booking | None:
    """The hold or booking made through the link, if any (the newest)."""
    if request.slot_id is None:
        return None
    return (
        Booking.objects.filter(slot_id=request.slot_id, student_email=request.student_email)
        .select_related("slot", "tutor", "offering")
        .order_by("-created_at")
        .first()
    )


def _existing_hold(booking: Booking) -> services.Hold:
    url = None
    if booking.status == BookingStatus.PENDING_PAYMENT:
        url = payment_port().checkout_url(booking)
    return services.Hold(booking=booking, payment_url=url or booking.manage_url)


def offer_hold(*, request: TimeRequest, now: datetime, client: str = "") -> services.Hold:
    """Hold the private slot for the student the tutor offered it to, through the normal
    hold (limits, decide(), checkout). The same click twice finds the first hold."""
    earlier = offer_booking(request)
    if earlier is not None and earlier.status in ACTIVE_STATUSES:
        return _existing_hold(earlier)
    if not offer_open(request, now=now):
        raise ApplicationError(
            "offer_expired",
            "This offer has ended. Ask the tutor for another time from their page.",
            status=410,
        )
    if request.slot_id is None:  # an accepted request has its slot (a constraint)
        raise NotFound("No offer for that link.")
    try:
        return services.booking_hold(
            slot_id=request.slot_id,
            mode=request.offering.mode,
            student_name=request.student_name,
            student_email=request.student_email,
            notes=request.note,
            student_timezone=request.student_timezone,
            client=client,
            now=now,
            private=True,
        )
    except SlotUnavailable:
        earlier = offer_booking(request)  # a double click held it a moment ago
        if earlier is not None and earlier.status in ACTIVE_STATUSES:
            return _existing_hold(earlier)
        raise


# --- the tutor's reads ----------------------------------------------------------------------


def tutor_requests(*, tutor: Tutor, status: str | None = None) -> QuerySet[TimeRequest]:
    """The tutor's requests, pending first (oldest first: they wait longest), then the
    answered ones newest first."""
    rows = TimeRequest.objects.filter(tutor=tutor).select_related("offering", "slot")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by(F("answered_at").desc(nulls_first=True), "created_at", "id")


def tutor_request(*, tutor: Tutor, request_id: int) -> TimeRequest:
    row = tutor_requests(tutor=tutor).filter(pk=request_id).first()
    if row is None:
        raise NotFound("No such request.")
    return row


def tutor_pending_count(*, tutor: Tutor) -> int:
    return TimeRequest.objects.filter(tutor=tutor, status=TimeRequestStatus.PENDING).count()


# --- emails ---------------------------------------------------------------------------------

# Queued by name, like the booking outbox (bookings/queueing.py).
deliver_request_email = cast(
    "Task[[int], str]", Proxy(lambda: queueing.registered("bookings.tasks.deliver_request_email"))
)


def _owe(request: TimeRequest, kind: str, *, now: datetime) -> None:
    """Inside the answer's transaction: the row, queued once it commits. A second owe of
    the same kind is a no-op (one_email_per_request_kind)."""
    TimeRequestEmail.objects.bulk_create(
        [TimeRequestEmail(request=request, kind=kind, due_at=now)], ignore_conflicts=True
    )
    pk = (
        TimeRequestEmail.objects.filter(request=request, kind=kind, state=NotificationState.PENDING)
        .values_list("pk", flat=True)
        .first()
    )
    if pk is not None:
        transaction.on_commit(lambda: _enqueue(pk))


def _enqueue(email_id: int) -> None:
    try:
        deliver_request_email.delay(email_id)
    except Exception:
        logger.warning("broker unavailable; request email %s waits for the sweep", email_id)


SUBJECTS = {
    TimeRequestEmailKind.RECEIVED: "{student} asks for a time: {date}",
    TimeRequestEmailKind.OFFERED: "{tutor} can meet you on {date}: hold it by {until}",
    TimeRequestEmailKind.DECLINED: "{tutor} cannot meet at the times you asked",
}


def _context(e: TimeRequestEmail) -> dict[str, Any]:
    """Plain, made-safe values only; the offer link is in the student's messages only."""
    request, tutor = e.request, e.request.tutor
    to_student = e.kind != TimeRequestEmailKind.RECEIVED
    tutor_zone = zones.zone_or_utc(tutor.timezone)
    zone = zones.zone_or_utc(request.student_timezone, tutor_zone) if to_student else tutor_zone
    duration = request.offering.duration
    accepted = request.accepted_time
    context: dict[str, Any] = {
        "to_student": to_student,
        "student_name": one_line(request.student_name, limit=200),
        "student_email": one_line(request.student_email, limit=254),
        "tutor_name": one_line(tutor.display_name, limit=200),
        "title": one_line(request.offering.title, limit=200),
        "minutes": request.offering.duration_minutes,
        "price": format_money(request.offering.price_amount, request.offering.currency),
        "times": [zones.when(t, zone, end=t + duration) for t in request.times],
        "student_times": [
            zones.when(t, zones.zone_or_utc(request.student_timezone, tutor_zone), short=True)
            for t in request.times
        ],
        "date": zones.when(accepted or request.times[0], zone, short=True),
        "when": zones.when(accepted, zone, end=accepted + duration) if accepted else "",
        "until": zones.when(request.offer_expires_at, zone, short=True)
        if request.offer_expires_at
        else "",
        "note": text_block(request.note) if not to_student else "",
        "message": text_block(request.decline_message),
        "tutor_url": f"{settings.PUBLIC_BASE_URL}/t/{quote(one_line(tutor.slug))}/",
        "requests_url": settings.PUBLIC_BASE_URL + reverse("web:tutor-requests"),
    }
    if e.kind == TimeRequestEmailKind.OFFERED:
        context["offer_url"] = request.offer_url
    return context


def build_message(e: TimeRequestEmail) -> EmailMultiAlternatives:
    request = e.request
    context = _context(e)
    to_student = context["to_student"]
    to = [notifications._address(request.student_email if to_student else request.tutor.email)]
    try:
        reply_to = [
            notifications._address(request.tutor.email if to_student else request.student_email)
        ]
    except ValueError:
        reply_to = []
    subject = SUBJECTS[TimeRequestEmailKind(e.kind)].format(
        student=context["student_name"],
        tutor=context["tutor_name"],
        date=context["date"],
        until=context["until"],
    )
    template = f"emails/request_{e.kind}"
    message = EmailMultiAlternatives(
        subject=one_line(subject, limit=250),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=reply_to,
        headers={"Message-ID": f"<{e.message_id}>"},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def _stale(e: TimeRequestEmail) -> str:
    """An offer that ended before it was sent, or a request answered before the tutor
    heard of it, is not worth an email any more."""
    status = e.request.status
    if e.kind == TimeRequestEmailKind.OFFERED and status != TimeRequestStatus.ACCEPTED:
        return f"request is {status}"
    if e.kind == TimeRequestEmailKind.RECEIVED and status != TimeRequestStatus.PENDING:
        return f"request is {status}"
    return ""


def deliver(email_id: int, *, now: datetime) -> str:
    """Send one due row if this caller wins the claim (see notifications.deliver)."""
    if not notifications.claim(TimeRequestEmail, email_id, now=now):
        return "not claimed"
    e = TimeRequestEmail.objects.select_related(
        "request", "request__tutor", "request__offering"
    ).get(pk=email_id)
    mine = TimeRequestEmail.objects.filter(pk=e.pk, state=NotificationState.SENDING)
    if reason := _stale(e):
        mine.update(state=NotificationState.VOID, last_error=reason)
        return "void"
    try:
        message = build_message(e)
        message.connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
        message.send()
    except (OSError, smtplib.SMTPException, ValueError, UnicodeError) as exc:
        logger.warning("request email %s attempt %s failed: %s", e.pk, e.attempts, exc)
        return notifications.failed(mine, exc, attempts=e.attempts, now=now)
    mine.update(state=NotificationState.SENT, sent_at=now, last_error="")
    return "sent"


def emails_sweep(*, now: datetime) -> dict[str, int]:
    """Send what is due (retries, rows the broker never got), after handing back rows a
    crashed worker left claimed."""
    TimeRequestEmail.objects.filter(
        state=NotificationState.SENDING, claimed_at__lt=now - notifications.LEASE
    ).update(state=NotificationState.PENDING)
    counts: dict[str, int] = {}
    due = TimeRequestEmail.objects.filter(state=NotificationState.PENDING, due_at__lte=now)
    for pk in list(due.order_by("due_at").values_list("pk", flat=True)[:500]):
        outcome = deliver(pk, now=now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
