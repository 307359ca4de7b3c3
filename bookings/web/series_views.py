"""Weekly series on the web (bookings/series.py): the form that books one time every
week, /t/<slug>/series/?slot=..., and the student's series page behind its private
link, /series/<token>/, with "cancel the remaining sessions". Thin, like the API's
bookings/api/series.py: parse, call the same service, render.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import Throttled

from bookings import ics, selectors
from bookings import series as series_service
from bookings.api.throttles import (
    client_address,
    hold_rate_check,
    hold_rate_record,
    link_throttled,
)
from bookings.errors import ApplicationError, NotFound, SlotUnavailable, apply_error
from bookings.models import Actor, Booking, BookingSeries, BookingStatus, Slot, Tutor
from bookings.payment_port import payment_port
from bookings.policy import policy_refund

from . import presenters
from .forms import BookingForm, Form, student_email_field, student_name_field
from .views import _int, _mode, _mode_choices, _public_tutor, too_many


class SeriesForm(Form):
    """One time every week: how many weeks, who, and which weeks to leave out."""

    slot = BookingForm.base_fields["slot"]
    mode = BookingForm.base_fields["mode"]
    weeks = forms.IntegerField(
        label="Number of weeks",
        help_text="The first week is the time you picked.",
        error_messages={
            "required": "Say how many weeks.",
            "invalid": "Enter a whole number of weeks.",
        },
    )
    skip = forms.TypedMultipleChoiceField(
        label="Weeks to leave out",
        coerce=date.fromisoformat,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "That week is not part of this series."},
    )
    student_name = student_name_field()
    student_email = student_email_field(
        help_text="Your confirmation, the calendar invite and the series link go here.",
        required_message="We need your email to send the confirmation.",
    )
    notes = BookingForm.base_fields["notes"]
    student_timezone = BookingForm.base_fields["student_timezone"]

    def __init__(
        self,
        *args: Any,
        modes: list[tuple[str, str]],
        most: int,
        week_dates: list[date],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["mode"]).choices = modes
        weeks = cast(forms.IntegerField, self.fields["weeks"])
        weeks.widget.attrs.update({"min": 2, "max": most, "inputmode": "numeric"})
        weeks.label = f"Number of weeks (2 to {most})"
        self.most = most
        # Weeks 2.. by their date on the tutor's calendar (week 1 cannot be left out).
        cast(forms.TypedMultipleChoiceField, self.fields["skip"]).choices = [
            (d.isoformat(), d.isoformat()) for d in week_dates[1:]
        ]

    def clean_weeks(self) -> int:
        weeks: int = self.cleaned_data["weeks"]
        if not 2 <= weeks <= self.most:
            raise forms.ValidationError(f"Choose from 2 to {self.most} weeks.")
        return weeks

    def clean_student_timezone(self) -> str:
        return BookingForm.clean_student_timezone(self)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SkipRow:
    """A week the student may leave out: a conflict the service named, or one they
    already dropped."""

    week: int
    date: str  # the tutor's local date, what `skip` takes
    start: datetime | None
    message: str


def _first_slot(tutor: Tutor, slot_id: int | None) -> Slot | None:
    return selectors.slot_of(tutor=tutor, slot_id=slot_id) if slot_id else None


def _week_dates(first: Slot, most: int) -> list[date]:
    local = first.start.astimezone(first.tutor.zone).date()
    return [local + timedelta(weeks=n) for n in range(max(most, 1))]


def _skip_rows(
    first: Slot, *, conflicts: list[dict[str, Any]], dropped: list[date]
) -> list[SkipRow]:
    """The service's conflicts, and the weeks already dropped on an earlier try (they
    stay dropped: the page carries them), in week order."""
    rows = {
        c["date"]: SkipRow(
            week=c["week"],
            date=c["date"],
            start=datetime.fromisoformat(c["start"]) if c["start"] else None,
            message=c["message"],
        )
        for c in conflicts
    }
    local = first.start.astimezone(first.tutor.zone)
    for day in dropped:
        if day.isoformat() not in rows:
            number = (day - local.date()).days // 7 + 1
            wall = (local.replace(tzinfo=None) + timedelta(weeks=number - 1)).replace(
                tzinfo=first.tutor.zone
            )
            rows[day.isoformat()] = SkipRow(number, day.isoformat(), wall, "You left it out.")
    return sorted(rows.values(), key=lambda r: r.week)


@require_http_methods(["GET", "POST"])
def series_new(request: HttpRequest, slug: str) -> HttpResponse:
    """Book the chosen time every week for N weeks: all held or none, one payment."""
    tutor = _public_tutor(slug)
    now = timezone.now()
    source = request.POST if request.method == "POST" else request.GET
    slot_id = _int(source.get("slot"))
    zone = presenters.zone_or(source.get("student_timezone") or source.get("tz"), tutor.timezone)
    mode = _mode(source.get("mode"))
    chosen = presenters.open_slot(tutor=tutor, slot_id=slot_id, now=now) if slot_id else None
    first = _first_slot(tutor, slot_id) if chosen else None
    if chosen is None or first is None:
        # Gone, or never open: the booking form says so and offers the nearest times.
        if slot_id is None:
            return redirect("web:tutor", slug=tutor.slug)
        return redirect(f"{reverse('web:book', args=[tutor.slug])}?slot={slot_id}")
    most = series_service.max_weeks(first, now=now)
    if not mode and len(chosen.modes) == 1:
        mode = chosen.modes[0].mode
    week_dates = _week_dates(first, most)
    kwargs: dict[str, Any] = {
        "modes": _mode_choices(tutor, chosen),
        "most": most,
        "week_dates": week_dates,
    }
    if request.method == "POST":
        form = SeriesForm(request.POST, **kwargs)
    else:
        initial = {"slot": slot_id, "mode": mode or None, "weeks": min(4, most)}
        form = SeriesForm(initial={**initial, "student_timezone": zone}, **kwargs)
    context: dict[str, Any] = {
        "tutor": tutor,
        "zone": zone,
        "chosen": chosen,
        "form": form,
        "most": most,
        "prices": chosen.modes,
        "last_week": week_dates[-1] if week_dates else None,
        "terms": presenters.cancellation_terms(tutor=tutor, start=chosen.start, zone=zone, now=now),
        "hold_minutes": settings.BOOKING_HOLD_MINUTES,
        "skips": [],
    }
    if most < 2:
        return render(request, "series/new.html", context)
    if request.method == "GET":
        context.update(_total(first, mode=mode, weeks=min(4, most), skipped=0))
        return render(request, "series/new.html", context)
    if not form.is_valid():
        if form.is_bound:
            dropped = [date.fromisoformat(d) for d in request.POST.getlist("skip") if _iso(d)]
            context["skips"] = _skip_rows(first, conflicts=[], dropped=dropped)
        return render(request, "series/new.html", context)
    data = form.cleaned_data
    context.update(_total(first, mode=data["mode"], weeks=data["weeks"], skipped=len(data["skip"])))
    try:
        hold_rate_check(data["student_email"], request=request)
    except Throttled as exc:
        return too_many(
            request, "series/new.html", context, form=form, wait=getattr(exc, "wait", None)
        )
    try:
        hold = series_service.series_hold(
            slot_id=first.pk,
            mode=data["mode"],
            weeks=data["weeks"],
            skip=data["skip"],
            student_name=data["student_name"],
            student_email=data["student_email"],
            notes=data["notes"],
            student_timezone=data["student_timezone"],
            client=client_address(request),
            now=now,
        )
    except series_service.SeriesConflict as exc:
        if any(c["week"] == 1 for c in exc.conflicts):
            form.add_error(None, "The first week is no longer open: pick another time.")
            return render(request, "series/new.html", context)
        context["conflict"] = True
        context["skips"] = _skip_rows(first, conflicts=exc.conflicts, dropped=data["skip"])
        left = data["weeks"] - len(context["skips"])
        context["remaining"] = left
        context.update(
            _total(first, mode=data["mode"], weeks=data["weeks"], skipped=len(context["skips"]))
        )
        return render(request, "series/new.html", context)
    except SlotUnavailable as exc:
        form.add_error(None, f"{exc.message} Pick another time.")
        return render(request, "series/new.html", context)
    except ApplicationError as exc:
        apply_error(form, exc)
        return render(request, "series/new.html", context)
    hold_rate_record(hold.series.student_email)
    return redirect(hold.payment_url)


def _iso(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _total(first: Slot, *, mode: str, weeks: Any, skipped: int) -> dict[str, Any]:
    """What the series costs as asked: the session's price times the weeks held
    (nothing to say before a mode and a sensible number of weeks are chosen)."""
    offering = first.offering_for(mode)
    if offering is None or not isinstance(weeks, int) or weeks < 2:
        return {}
    sessions = weeks - skipped
    return {
        "sessions": sessions,
        "session_price": presenters.money(offering.price_amount, offering.currency),
        "total_price": presenters.money(offering.price_amount * sessions, offering.currency),
    }


# --- the series page behind its link ---------------------------------------------------


def _series(token: str) -> BookingSeries:
    try:
        return series_service.series_by_token(token)
    except NotFound:
        raise Http404("No series for that link.") from None


@dataclass(frozen=True)
class SessionRow:
    booking: Booking
    week: int
    start: datetime
    end: datetime
    status: str
    label: str
    refund: str  # what cancelling now gives back (the cancel page)


def _rows(sessions: list[Booking], *, now: datetime) -> list[SessionRow]:
    return [
        SessionRow(
            booking=b,
            week=b.series_week or 0,
            start=b.slot.start,
            end=b.slot.end,
            status=b.status,
            label=b.get_status_display(),
            refund=presenters.money(policy_refund(b, actor=Actor.STUDENT, now=now), b.currency),
        )
        for b in sessions
    ]


def _cancellable(sessions: list[Booking], *, now: datetime) -> list[Booking]:
    """What series_cancel_rest cancels: held or confirmed sessions not yet started."""
    active = (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED)
    return [b for b in sessions if b.status in active and b.slot.start > now]


def _page_context(series: BookingSeries, *, now: datetime, request: HttpRequest) -> dict[str, Any]:
    sessions = series_service.series_sessions(series)
    zone = presenters.zone_or(
        request.GET.get("tz") or series.student_timezone, series.tutor.timezone
    )
    held = [b for b in sessions if b.is_active]
    pending = any(b.status == BookingStatus.PENDING_PAYMENT for b in sessions)
    rest = _cancellable(sessions, now=now)
    return {
        "series": series,
        "tutor": series.tutor,
        "zone": zone,
        "rows": _rows(sessions, now=now),
        "rest": _rows(rest, now=now),
        "total": presenters.money(sum(b.price_amount for b in held), series.offering.currency),
        "held_count": len(held),
        "payment_url": payment_port().checkout_url(sessions[0]) if pending and sessions else None,
        "has_invite": any(ics.event_state(b) for b in sessions),
        "refund_hours": series.tutor.full_refund_hours,
    }


@require_http_methods(["GET"])
@link_throttled
def series_page(request: HttpRequest, token: str) -> HttpResponse:
    """The student's private series page: every week, its status and its own link."""
    series = _series(token)
    context = _page_context(series, now=timezone.now(), request=request)
    return render(request, "series/page.html", context)


@require_http_methods(["GET", "POST"])
@link_throttled
def series_cancel(request: HttpRequest, token: str) -> HttpResponse:
    """Say what cancelling the rest refunds, week by week; cancel once confirmed."""
    series = _series(token)
    now = timezone.now()
    page = reverse("web:series", args=[token])
    if request.method == "POST":
        try:
            done = series_service.series_cancel_rest(series=series, now=now, actor=Actor.STUDENT)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(page)
        refunded = sum(c.refund_amount for c in done)
        if not done:
            text = "There were no sessions left to cancel."
        elif refunded:
            back = presenters.money(refunded, series.offering.currency)
            text = f"{len(done)} sessions cancelled. {back} is on its way back to your card."
        else:
            text = f"{len(done)} sessions cancelled."
        messages.success(request, text)
        return redirect(page)
    context = _page_context(series, now=now, request=request)
    if not context["rest"]:
        return redirect(page)
    return render(request, "series/cancel.html", context)
