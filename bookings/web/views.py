"""Server-rendered pages over the same services and selectors as the API.

Students (no account): the tutor's page with its slot picker, the booking form, and the
private manage page behind the booking's token. Tutors (signed in): their sessions,
availability and offerings. Each view parses a form, calls a service or a selector,
and renders; presenters.py shapes results for the templates.
"""

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)
from rest_framework.exceptions import Throttled

from bookings import conditional, selectors, services
from bookings.api.throttles import (
    client_address,
    hold_rate_check,
    hold_rate_record,
    link_throttled,
)
from bookings.calendar_links import booking_calendar_links
from bookings.errors import ApplicationError, NotFound, SlotUnavailable, apply_error
from bookings.models import (
    ACTIVE_STATUSES,
    Actor,
    AvailabilityRule,
    Booking,
    BookingStatus,
    Mode,
    SlotSource,
    Tutor,
)
from bookings.payment_port import payment_port
from bookings.policy import policy_refund, reschedulable
from bookings.presenters import booking_facts, student_links

from . import presenters
from .forms import (
    AskToMoveForm,
    BlockForm,
    BookingForm,
    OfferingForm,
    OneOffSlotForm,
    RescheduleForm,
    RuleForm,
    SessionSearchForm,
    TutorCancelForm,
    TutorSettingsForm,
)


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _mode(value: Any) -> str:
    return value if value in Mode.values else ""


def _public_tutor(slug: str) -> Tutor:
    try:
        return selectors.tutor_public(slug)
    except NotFound:
        raise Http404("No tutor with that name.") from None


def _booking(token: str) -> Booking:
    try:
        return selectors.booking_by_token(token)
    except NotFound:
        raise Http404("No booking for that link.") from None


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names no icon (the simulated
    checkout, the admin): answer "nothing here" instead of a 404 in their consoles."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response


# --- students --------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    tutors = list(selectors.tutors_public())
    if len(tutors) == 1:
        return redirect("web:tutor", slug=tutors[0].slug)
    cards = [(t, presenters.offering_rows(t.offerings.all())) for t in tutors]
    return render(request, "bookings/home.html", {"cards": cards})


@require_safe
def tutor_page(request: HttpRequest, slug: str) -> HttpResponse:
    tutor = _public_tutor(slug)
    now = timezone.now()
    zone = presenters.zone_or(request.GET.get("tz"), tutor.timezone)
    mode = _mode(request.GET.get("mode"))
    plain_view = request.GET.get("view") == "list"
    check = conditional.for_page(request, tutor=tutor, now=now, variant=[zone, mode, plain_view])
    if check and (unchanged := check.not_modified(request)):
        return unchanged
    rows = presenters.picker_slots(tutor=tutor, now=now)
    offered = {o.mode for o in tutor.offerings.all()}
    response = render(
        request,
        "bookings/tutor.html",
        {
            "tutor": tutor,
            "offerings": presenters.offering_rows(tutor.offerings.all(), open_slots=rows),
            "zone": zone,
            "zones": presenters.zone_choices(zone, tutor.timezone, now=now),
            "mode": mode,
            "modes": [(value, label) for value, label in Mode.choices if value in offered],
            "plain_view": plain_view,
            # Browsers without JavaScript get the same slots as a list (?view=list).
            "plain_days": presenters.plain_days(rows, zone=ZoneInfo(zone), mode=mode, now=now)
            if plain_view
            else [],
            "picker": None
            if plain_view
            else presenters.picker_data(rows, refund_hours=tutor.full_refund_hours),
            "horizon_weeks": settings.SLOT_HORIZON_WEEKS,
            # Slots starting before this are past free cancellation (bookings.policy).
            "refund_line": presenters.refund_line(tutor=tutor, now=now),
        },
    )
    if check:  # the page lists the picker's window from now; the plain list, whole days
        day_zone = ZoneInfo(zone) if plain_view else None
        starts = [row.start for row in rows]
        check.tag(response, starts=starts, window=presenters.picker_fetch(), day_zone=day_zone)
    return response


def _mode_choices(tutor: Tutor, chosen: presenters.SlotRow | None) -> list[tuple[str, str]]:
    """The mode radios: what this slot offers, with prices; else what the tutor offers."""
    if chosen is not None:
        offers = {o.mode: o for o in tutor.offerings.all()}
        choices = []
        for m in chosen.modes:
            label = f"{m.label} · {m.price}"
            offering = offers.get(m.mode)
            if offering is not None and offering.place:
                label += f" · meet at {offering.place_name}, {offering.place_address}"
            choices.append((m.mode, label))
        return choices
    present = {o.mode for o in tutor.offerings.all()}
    return [(value, label) for value, label in Mode.choices if value in present]


@require_http_methods(["GET", "POST"])
def book(request: HttpRequest, slug: str) -> HttpResponse:
    """The booking form for one slot; on success, straight to the checkout page."""
    tutor = _public_tutor(slug)
    now = timezone.now()
    source = request.POST if request.method == "POST" else request.GET
    slot_id = _int(source.get("slot"))
    if slot_id is None and request.method == "GET":
        return redirect("web:tutor", slug=tutor.slug)
    zone = presenters.zone_or(source.get("student_timezone") or source.get("tz"), tutor.timezone)
    mode = _mode(source.get("mode"))
    chosen = presenters.open_slot(tutor=tutor, slot_id=slot_id, now=now) if slot_id else None
    context: dict[str, Any] = {
        "tutor": tutor,
        "zone": zone,
        "chosen": chosen,
        "hold_minutes": settings.BOOKING_HOLD_MINUTES,
        "horizon_weeks": settings.SLOT_HORIZON_WEEKS,
    }
    if chosen is not None:
        context["terms"] = presenters.cancellation_terms(
            tutor=tutor, start=chosen.start, zone=zone, now=now
        )
        context["place"] = presenters.chosen_place(tutor=tutor, chosen=chosen, zone=zone, mode=mode)

    if request.method == "GET":
        context["request_key"] = new_request_key()
        if chosen is not None and not mode and len(chosen.modes) == 1:
            mode = chosen.modes[0].mode
        form = BookingForm(
            initial={"slot": slot_id, "mode": mode or None, "student_timezone": zone},
            modes=_mode_choices(tutor, chosen),
        )
        if chosen is None:
            return _taken(request, form, context, slot_id=slot_id, mode=mode)
        return render(request, "bookings/book.html", {**context, "form": form})

    # The same submission again (a double tap, or Back after paying and resend): show
    # what it already made instead of a second hold or a false "just taken".
    request_key = _request_key(request.POST.get("request_key"))
    earlier = services.hold_for_request(request_key) if request_key else None
    if earlier is not None:
        return redirect(earlier.payment_url)
    context["request_key"] = request_key or new_request_key()
    form = BookingForm(request.POST, modes=_mode_choices(tutor, chosen))
    if not form.is_valid():
        if chosen is None:
            return _taken(request, form, context, slot_id=slot_id, mode=mode)
        return render(request, "bookings/book.html", {**context, "form": form})
    data = form.cleaned_data
    try:
        hold_rate_check(data["student_email"], request=request)
    except Throttled as exc:
        return too_many(
            request,
            "bookings/book.html",
            {**context, "form": form},
            form=form,
            wait=getattr(exc, "wait", None),
        )
    try:
        hold = services.booking_hold(
            slot_id=data["slot"],
            mode=data["mode"],
            student_name=data["student_name"],
            student_email=data["student_email"],
            notes=data["notes"],
            student_timezone=data["student_timezone"],
            client=client_address(request),
            request_key=request_key,
            now=now,
        )
    except SlotUnavailable as exc:
        return _taken(request, form, context, slot_id=slot_id, mode=mode, why=exc)
    except ApplicationError as exc:
        apply_error(form, exc)
        if chosen is None:
            return _taken(request, form, context, slot_id=slot_id, mode=mode)
        return render(request, "bookings/book.html", {**context, "form": form})
    hold_rate_record(hold.booking.student_email)
    return redirect(hold.payment_url)


def too_many(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    form: Any,
    wait: float | None,
    what: str = "booking attempts",
) -> HttpResponse:
    """A public form over its rate limit: the form again with why and when to retry,
    429 with Retry-After (the one place the pages say it)."""
    seconds = int(wait or 60)
    minutes = max(1, round(seconds / 60))
    when = "a minute" if minutes == 1 else f"{minutes} minutes"
    form.add_error(None, f"Too many {what}. Please try again in {when}.")
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response


_REQUEST_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_request_key() -> str:
    """A one-time key for one booking form: its submissions all mean the same hold."""
    return secrets.token_urlsafe(24)


def _request_key(value: str | None) -> str | None:
    return value if value and _REQUEST_KEY.fullmatch(value) else None


def _taken(
    request: HttpRequest,
    form: BookingForm,
    context: dict[str, Any],
    *,
    slot_id: int | None,
    mode: str,
    why: SlotUnavailable | None = None,
) -> HttpResponse:
    """The chosen slot is gone: say so kindly and offer the nearest open ones instead."""
    tutor: Tutor = context["tutor"]
    now = timezone.now()
    gone = selectors.slot_of(tutor=tutor, slot_id=slot_id)
    was = gone.start if gone else None
    options = presenters.alternatives(tutor=tutor, now=now, near=was, mode=mode or None)
    form.set_modes(_mode_choices(tutor, None))
    return render(
        request,
        "bookings/book.html",
        {
            **context,
            "chosen": None,
            "form": form,
            "taken": True,
            "taken_message": why.message if why else "",
            "was": was,
            "alternatives": options,
            "picked": _int(form.data.get("slot")) if form.is_bound else None,
        },
    )


@require_GET
@link_throttled
def manage(request: HttpRequest, token: str) -> HttpResponse:
    """The student's private page: the booking's state and what they can do next."""
    booking = _booking(token)
    now = timezone.now()
    page = presenters.booking_page(booking, now=now)
    context: dict[str, Any] = {"page": page, "booking": booking, "zone": page.zone}
    if page.state == "confirmed":
        context["calendar"] = booking_calendar_links(booking)
    if page.state == "pending":
        context["payment_url"] = payment_port().checkout_url(booking)
    if page.state == "cancelled":
        context["cancellation"] = services.cancellation_of(booking)
    if page.state == "hold_expired":
        again = presenters.open_slot(tutor=booking.tutor, slot_id=booking.slot_id, now=now)
        context["book_again"] = again is not None and any(
            m.mode == booking.mode for m in again.modes
        )
    return render(request, "bookings/manage.html", context)


@require_http_methods(["GET", "POST"])
@link_throttled
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    """Say what the policy refunds, then cancel once the student confirms."""
    booking = _booking(token)
    now = timezone.now()
    if booking.status not in ACTIVE_STATUSES:
        return redirect(booking.manage_path)
    if request.method == "POST":
        try:
            result = services.booking_cancel(booking_id=booking.pk, actor=Actor.STUDENT, now=now)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(booking.manage_path)
        if result.credit_returned:
            text = "Your session is cancelled. One credit is back in your package."
        elif result.refund_amount:
            refund = presenters.money(result.refund_amount, booking.currency)
            text = f"Your session is cancelled. {refund} is on its way back to your card."
        elif booking.status == BookingStatus.PENDING_PAYMENT:
            text = "Your hold is cancelled and the slot released. Nothing was charged."
        else:
            text = "Your session is cancelled."
        messages.success(request, text)
        return redirect(booking.manage_path)
    page = presenters.booking_page(booking, now=now)
    due = policy_refund(booking, actor=Actor.STUDENT, now=now)
    started = booking.status == BookingStatus.CONFIRMED and booking.slot.start <= now
    return render(
        request,
        "bookings/cancel.html",
        {
            "page": page,
            "booking": booking,
            "zone": page.zone,
            "refund": presenters.money(due, booking.currency),
            "full_refund": due >= booking.price_amount,
            "started": started,
            # Paid with a package credit: cancelling moves a credit, not money.
            "prepaid": booking.status == BookingStatus.CONFIRMED
            and payment_port().prepaid(booking),
        },
    )


@require_http_methods(["GET", "POST"])
@link_throttled
def reschedule(request: HttpRequest, token: str) -> HttpResponse:
    """Pick another open slot (same mode and length), confirm, move."""
    booking = _booking(token)
    now = timezone.now()
    page = presenters.booking_page(booking, now=now)
    zone = presenters.zone_or(request.GET.get("tz"), page.zone)
    context: dict[str, Any] = {"page": page, "booking": booking, "zone": zone}
    if not page.can_reschedule:
        return render(request, "bookings/reschedule.html", context)
    target_id = _int(
        request.POST.get("slot") if request.method == "POST" else request.GET.get("slot")
    )
    problem = ""
    if request.method == "POST":
        form = RescheduleForm(request.POST)
        if form.is_valid():
            try:
                moved = services.booking_reschedule(
                    booking_id=booking.pk, slot_id=form.cleaned_data["slot"], now=now
                )
            except SlotUnavailable:
                problem = "Sorry, that time was just taken. Pick another one."
            except ApplicationError as exc:
                problem = exc.message
            else:
                messages.success(request, "Your session has moved. Here are the new details.")
                return redirect(moved.manage_path)
        else:
            problem = "Pick a new time first."
    elif target_id is not None:
        target = presenters.open_slot(tutor=booking.tutor, slot_id=target_id, now=now)
        if target is not None and any(m.mode == booking.mode for m in target.modes):
            context["target"] = target
            context["target_terms"] = presenters.cancellation_terms(
                tutor=booking.tutor, start=target.start, zone=zone, now=now
            )
            return render(request, "bookings/reschedule.html", context)
        problem = "Sorry, that time was just taken. Pick another one."
    rows = [
        r
        for r in presenters.picker_slots(
            tutor=booking.tutor,
            now=now,
            mode=booking.mode,
            duration=booking.slot.end - booking.slot.start,
        )
        if r.id != booking.slot_id
    ]
    plain_view = request.GET.get("view") == "list"
    context.update(
        {
            "zones": presenters.zone_choices(zone, booking.tutor.timezone, now=now),
            "problem": problem,
            "plain_view": plain_view,
            "picker": None
            if plain_view
            else presenters.picker_data(rows, refund_hours=booking.tutor.full_refund_hours),
            "plain_days": presenters.plain_days(rows, zone=ZoneInfo(zone), mode="", now=now)
            if plain_view
            else [],
            "reschedule_url": student_links(booking).reschedule,
            "horizon_weeks": settings.SLOT_HORIZON_WEEKS,
            "refund_line": presenters.refund_line(tutor=booking.tutor, now=now),
        }
    )
    return render(request, "bookings/reschedule.html", context)


# --- tutors --------------------------------------------------------------------------------


def tutor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, with a tutor profile; the view gets that tutor as its second argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tutor = getattr(request.user, "tutor", None)
        if tutor is None:
            return render(request, "tutor/no_profile.html", status=403)
        return view(request, tutor, *args, **kwargs)

    return wrapper


# Sessions per page of the dashboard's lists.
SESSIONS_PER_PAGE = 25


@tutor_required
@require_GET
def dashboard(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    """The tutor's sessions: upcoming (by day), past or cancelled, searched by student
    and a page at a time; what needs an outcome; the money of the last months."""
    now = timezone.now()
    search = SessionSearchForm(request.GET)
    show, query = "upcoming", ""
    if search.is_valid():
        show, query = search.cleaned_data["show"], search.cleaned_data["q"]
    elif search.data.get("show") in selectors.SESSION_LISTS:
        show = search.data["show"]
    rows = selectors.tutor_sessions(tutor=tutor, show=show, now=now, query=query)
    page = Paginator(rows, SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "tutor/dashboard.html",
        {
            "tutor": tutor,
            "zone": tutor.timezone,
            "show": show,
            "query": query,
            "search": search,
            "page": page,
            "days": presenters.by_day(page.object_list, tutor.zone) if show == "upcoming" else [],
            "earnings": presenters.earnings(tutor=tutor, now=now),
            "getting_started": presenters.getting_started(tutor=tutor, now=now),
            "awaiting": presenters.tutor_awaiting_outcome(tutor=tutor, now=now),
            "holds": selectors.tutor_hold_counts(tutor=tutor, now=now),
            "busy_conflicts": selectors.tutor_busy_conflicts(tutor=tutor, now=now),
            "max_client_holds": settings.BOOKING_MAX_HOLDS_PER_CLIENT,
            "now": now,
        },
    )


@tutor_required
@require_http_methods(["GET", "POST"])
def tutor_booking(request: HttpRequest, tutor: Tutor, pk: str) -> HttpResponse:
    try:
        booking = selectors.tutor_booking(tutor=tutor, booking_id=pk)
    except NotFound:
        raise Http404 from None
    now = timezone.now()
    action = request.POST.get("action") if request.method == "POST" else None
    form = TutorCancelForm(request.POST if action == "cancel" else None)
    ask_form = AskToMoveForm(request.POST if action == "ask" else None)
    confirm_no_show = False
    if action is not None:
        try:
            done = _tutor_booking_action(request, booking, action, form, ask_form, now=now)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            done = True
        if done:
            return redirect("web:tutor-booking", pk=booking.pk)
        confirm_no_show = action == BookingStatus.NO_SHOW
    due = policy_refund(booking, actor=Actor.TUTOR, now=now)
    return render(
        request,
        "tutor/booking.html",
        {
            "tutor": tutor,
            "booking": booking,
            "zone": tutor.timezone,
            "price": presenters.money(booking.price_amount, booking.currency),
            "refund": presenters.money(due, booking.currency),
            "refunded": presenters.money(booking.refund_amount, booking.currency),
            "prepaid": booking.status in ACTIVE_STATUSES and payment_port().prepaid(booking),
            "cancellation": services.cancellation_of(booking)
            if booking.status == BookingStatus.CANCELLED
            else None,
            "started": booking.slot.start <= now,
            "ended": booking.slot.end <= now,
            "can_ask": reschedulable(booking, now=now),
            "confirm_no_show": confirm_no_show,
            "events": booking.events.all(),
            "form": form,
            "ask_form": ask_form,
            "place": booking_facts(booking, now=now, for_tutor=True).place,
        },
    )


def _tutor_booking_action(
    request: HttpRequest,
    booking: Booking,
    action: str,
    form: TutorCancelForm,
    ask_form: AskToMoveForm,
    *,
    now: datetime,
) -> bool:
    """Do what the booking page's button asks. True when done (the page redirects);
    False to show the page again (a form's errors, or the no-show's confirmation)."""
    if action == "cancel":
        if not form.is_valid():
            return False
        result = services.booking_cancel(
            booking_id=booking.pk, actor=Actor.TUTOR, now=now, reason=form.cleaned_data["reason"]
        )
        if booking.status == BookingStatus.PENDING_PAYMENT:
            messages.success(request, "Hold released: the slot is open again.")
        elif result.credit_returned:
            messages.success(request, "Cancelled; the student's package credit was returned.")
        else:
            refund = presenters.money(result.refund_amount, booking.currency)
            messages.success(request, f"Cancelled; {refund} refunded to the student.")
    elif action == "ask":
        if not ask_form.is_valid():
            return False
        message = ask_form.cleaned_data["message"]
        asked = services.booking_ask_to_reschedule(booking_id=booking.pk, now=now, message=message)
        if asked:
            text = f"Asked {booking.student_name} by email to pick another time."
        else:
            text = f"You already asked {booking.student_name} to pick another time."
        messages.success(request, text)
    elif action == BookingStatus.COMPLETED:
        services.booking_mark_outcome(booking_id=booking.pk, status=action, now=now)
        messages.success(request, "Marked as completed.")
    elif action == BookingStatus.NO_SHOW:
        if request.POST.get("confirm") != "yes":
            return False  # the page asks "are you sure?" first
        services.booking_mark_outcome(booking_id=booking.pk, status=action, now=now)
        messages.success(request, "Marked as a no-show.")
    elif action == "undo":
        services.booking_outcome_undo(booking_id=booking.pk, now=now)
        messages.success(request, "Outcome taken back: the session is confirmed again.")
    else:
        messages.error(request, "Unknown action.")
    return True


def _availability(
    request: HttpRequest,
    tutor: Tutor,
    *,
    rule_form: RuleForm | None = None,
    block_form: BlockForm | None = None,
    slot_form: OneOffSlotForm | None = None,
    preview: presenters.RulePreview | None = None,
) -> HttpResponse:
    now = timezone.now()
    names = dict(presenters.WEEKDAYS)
    rules = [
        (rule, ", ".join(names[d] for d in rule.weekdays))
        for rule in sorted(
            selectors.tutor_rules(tutor=tutor),
            key=lambda r: (min(r.weekdays, default=8), r.start_time, r.pk),
        )
    ]
    one_offs = list(
        selectors.tutor_slot_rows(tutor=tutor, source=SlotSource.ONE_OFF, end_after=now)
    )
    booked = selectors.active_bookings_of(one_offs)
    return render(
        request,
        "tutor/availability.html",
        {
            "tutor": tutor,
            "zone": tutor.timezone,
            "rules": rules,
            "blocks": presenters.blocks_with_bookings(
                tutor=tutor, blocks=list(selectors.tutor_blocks(tutor=tutor, now=now)), now=now
            ),
            "one_offs": [(s, booked.get(s.pk)) for s in one_offs],
            "rule_form": rule_form or RuleForm(tutor=tutor, initial={"is_active": True}),
            "block_form": block_form or BlockForm(),
            "slot_form": slot_form or OneOffSlotForm(tutor=tutor),
            "preview": preview,
            "has_offerings": selectors.tutor_offerings(tutor=tutor, active_only=True).exists(),
        },
    )


def _rule_preview(
    tutor: Tutor, form: RuleForm, rule: AvailabilityRule | None
) -> presenters.RulePreview:
    data = form.cleaned_data
    return presenters.rule_preview(
        tutor=tutor,
        now=timezone.now(),
        weekdays=data["weekdays"],
        start_time=data["start_time"],
        end_time=data["end_time"],
        duration=data["offerings"][0].duration,
        valid_from=data.get("valid_from"),
        valid_until=data.get("valid_until"),
        rule_id=rule.pk if rule else None,
    )


def _rule_submit(
    request: HttpRequest, tutor: Tutor, rule: AvailabilityRule | None
) -> HttpResponse | tuple[RuleForm, presenters.RulePreview | None]:
    """Preview or save a rule: a response, or the form (and preview) to show again.

    The page's script asks for the preview alone (X-Preview: 1) as the tutor types.
    """
    form = RuleForm(request.POST, tutor=tutor)
    only_preview = request.POST.get("action") == "preview"
    if not form.is_valid():
        if request.headers.get("X-Preview") == "1":
            return render(request, "tutor/_preview.html", {"form": form, "zone": tutor.timezone})
        return form, None
    preview = _rule_preview(tutor, form, rule)
    if request.headers.get("X-Preview") == "1":
        return render(request, "tutor/_preview.html", {"preview": preview, "zone": tutor.timezone})
    if only_preview:
        return form, preview
    now = timezone.now()
    try:
        saved = services.rule_save(tutor=tutor, now=now, rule=rule, **form.cleaned_data)
    except ApplicationError as exc:
        apply_error(form, exc)
        return form, preview
    count = selectors.rule_slot_count(rule=saved, now=now)
    messages.success(
        request,
        f"Rule saved. It gives you {count} slot{'s' if count != 1 else ''} over the coming weeks.",
    )
    duration = form.cleaned_data["offerings"][0].duration
    for warning in presenters.rule_warnings(tutor=tutor, now=now, rule=saved, duration=duration):
        messages.warning(request, warning)
    return redirect("web:tutor-slots")


@tutor_required
@require_http_methods(["GET", "POST"])
def availability(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    if request.method == "GET":
        return _availability(request, tutor)
    outcome = _rule_submit(request, tutor, None)
    if isinstance(outcome, HttpResponse):
        return outcome
    form, preview = outcome
    return _availability(request, tutor, rule_form=form, preview=preview)


@tutor_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    rule = get_object_or_404(selectors.tutor_rules(tutor=tutor), pk=pk)
    if request.method == "GET":
        form = RuleForm(
            tutor=tutor,
            initial={
                "weekdays": rule.weekdays,
                "start_time": rule.start_time,
                "end_time": rule.end_time,
                "offerings": list(rule.offerings.all()),
                "valid_from": rule.valid_from,
                "valid_until": rule.valid_until,
                "is_active": rule.is_active,
            },
        )
        return render(request, "tutor/rule_edit.html", {"tutor": tutor, "rule": rule, "form": form})
    outcome = _rule_submit(request, tutor, rule)
    if isinstance(outcome, HttpResponse):
        return outcome
    form, preview = outcome
    return render(
        request,
        "tutor/rule_edit.html",
        {"tutor": tutor, "rule": rule, "form": form, "preview": preview, "zone": tutor.timezone},
    )


@tutor_required
@require_POST
def rule_delete(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    rule = get_object_or_404(selectors.tutor_rules(tutor=tutor), pk=pk)
    services.rule_delete(rule=rule, now=timezone.now())
    messages.success(request, "Rule deleted. Its unbooked slots are withdrawn; booked ones stay.")
    return redirect("web:tutor-availability")


@tutor_required
@require_POST
def block_add(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    form = BlockForm(request.POST)
    if not form.is_valid():
        return _availability(request, tutor, block_form=form)
    data = form.cleaned_data
    zone = tutor.zone
    now = timezone.now()
    try:
        block = services.block_create(
            tutor=tutor,
            start=presenters.local_day_start(data["first_day"], zone),
            end=presenters.local_day_start(data["last_day"] + timedelta(days=1), zone),
            reason=data["reason"],
            now=now,
        )
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _availability(request, tutor, block_form=form)
    messages.success(request, "Dates blocked. Open slots on those days are withdrawn.")
    covered = selectors.block_bookings(tutor=tutor, block=block, now=now).count()
    if covered:
        sessions = "1 booked session falls" if covered == 1 else f"{covered} booked sessions fall"
        messages.warning(
            request, f"{sessions} on these days and still stands: keep it or cancel it below."
        )
        return redirect("web:tutor-block", pk=block.pk)
    return redirect("web:tutor-availability")


@tutor_required
@require_POST
def block_delete(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    block = get_object_or_404(selectors.tutor_blocks(tutor=tutor), pk=pk)
    services.block_delete(block=block, now=timezone.now())
    messages.success(request, "Block removed. Your rules fill those days again.")
    return redirect("web:tutor-availability")


@tutor_required
@require_POST
def slot_add(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    form = OneOffSlotForm(request.POST, tutor=tutor)
    if not form.is_valid():
        return _availability(request, tutor, slot_form=form)
    data = form.cleaned_data
    start = presenters.local_moment(data["day"], data["start_time"], tutor.zone)
    if start is None:
        form.add_error("start_time", "The clocks skip that time on that day (daylight saving).")
        return _availability(request, tutor, slot_form=form)
    try:
        services.slot_create_one_off(
            tutor=tutor, start=start, offerings=list(data["offerings"]), now=timezone.now()
        )
    except ApplicationError as exc:
        apply_error(form, exc)
        return _availability(request, tutor, slot_form=form)
    messages.success(request, "One-off slot added.")
    return redirect("web:tutor-availability")


@tutor_required
@require_GET
def slots(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    return render(
        request,
        "tutor/slots.html",
        {
            "tutor": tutor,
            "zone": tutor.timezone,
            "days": presenters.tutor_slots(tutor=tutor, now=timezone.now()),
        },
    )


@tutor_required
@require_POST
def slot_delete(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    slot = get_object_or_404(selectors.tutor_slot_rows(tutor=tutor, include_removed=True), pk=pk)
    try:
        services.slot_delete(slot=slot, now=timezone.now())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Slot removed. Students can no longer book it.")
    back = request.POST.get("next", "")
    # A path on this site only: redirect() would read anything else as a view name
    # (and fail with a 500 on "9999-12-31"), or send the tutor to another host.
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        back = reverse("web:tutor-slots")
    return HttpResponseRedirect(back)


@tutor_required
@require_http_methods(["GET", "POST"])
def offerings(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    form = OfferingForm(request.POST or None, tutor=tutor)
    if request.method == "POST" and form.is_valid() and _offering_saved(form, tutor):
        messages.success(request, "Session type added. Use it in a weekly rule to open slots.")
        return redirect("web:tutor-offerings")
    selling = selectors.tutor_offerings_with_slots(tutor=tutor, now=timezone.now())
    rows = [
        (o, presenters.money(o.price_amount, o.currency), o.pk in selling)
        for o in selectors.tutor_offerings(tutor=tutor)
    ]
    return render(
        request,
        "tutor/offerings.html",
        {"tutor": tutor, "rows": rows, "form": form},
    )


def _offering_saved(form: OfferingForm, tutor: Tutor) -> bool:
    """Save through the service; its refusals become errors on the form's fields."""
    try:
        services.offering_save(
            tutor=tutor,
            now=timezone.now(),
            offering=form.instance if form.instance.pk else None,
            **form.changes(),
        )
    except ApplicationError as exc:
        apply_error(form, exc)
        return False
    return True


@tutor_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    """The tutor's rules of business (notice, buffer, refunds) and the calendar feed."""
    # A copy: a valid form writes its input onto its instance before the service runs.
    form = TutorSettingsForm(request.POST or None, instance=selectors.tutor_fresh(tutor=tutor))
    if request.method == "POST" and form.is_valid():
        services.tutor_save(tutor=tutor, now=timezone.now(), **form.cleaned_data)
        messages.success(request, "Settings saved.")
        return redirect("web:tutor-settings")
    return render(request, "tutor/settings.html", {"tutor": tutor, "form": form})


@tutor_required
@require_POST
def feed_rotate(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    services.tutor_rotate_feed(tutor=tutor)
    messages.success(
        request, "New calendar link made. The old one has stopped working: update your calendar."
    )
    return redirect("web:tutor-settings")


@tutor_required
@require_http_methods(["GET", "POST"])
def offering_edit(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    offering = get_object_or_404(selectors.tutor_offerings(tutor=tutor), pk=pk)
    form = OfferingForm(request.POST or None, instance=offering, tutor=tutor)
    if request.method == "POST" and form.is_valid() and _offering_saved(form, tutor):
        messages.success(request, "Session type saved.")
        return redirect("web:tutor-offerings")
    return render(
        request,
        "tutor/offering_edit.html",
        {"tutor": tutor, "offering": offering, "form": form},
    )
