"""Requested times on the web (bookings/time_requests.py): the student's form
/t/<slug>/request/, the private offer page /offer/<token>/, and the tutor's list
/tutor/requests/ where one click accepts a time or declines. Thin: parse, call, render.
"""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from bookings import time_requests, validation, zones
from bookings.api.requests import RequestsPerIPThrottle
from bookings.api.throttles import client_address, link_throttled
from bookings.availability import horizon_end, local_to_utc
from bookings.errors import ApplicationError, NotFound, apply_error
from bookings.models import MAX_REQUESTED_TIMES, Offering, TimeRequestStatus, Tutor
from bookings.money import format_money

from . import presenters
from .forms import Form, TextField, student_email_field, student_name_field
from .views import _public_tutor, too_many, tutor_required

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _time_field(n: int) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=f"Time {n}" if n == 1 else f"Time {n} (optional)",
        required=n == 1,
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
        error_messages={
            "required": "Propose at least one time.",
            "invalid": "Enter a date and time, e.g. 2026-12-10 18:00.",
        },
    )


class TimeRequestForm(Form):
    offering = forms.TypedChoiceField(
        label="Which session?",
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a session."},
    )
    time_1 = _time_field(1)
    time_2 = _time_field(2)
    time_3 = _time_field(3)
    student_timezone = forms.ChoiceField(label="Your time zone")
    student_name = student_name_field()
    student_email = student_email_field(
        help_text="The tutor's answer, and a link to book the time, go here.",
        required_message="We need your email to send the tutor's answer.",
    )
    note = TextField(
        multiline=True,
        label="A note for the tutor (optional)",
        max_length=validation.NOTES_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(
        self,
        *args: Any,
        offerings: list[Offering],
        zone_choices: list[tuple[str, str]],
        now: datetime,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        self.fields["offering"].choices = [  # type: ignore[attr-defined]
            (
                o.pk,
                f"{o.title} · {o.duration_minutes} min · "
                f"{format_money(o.price_amount, o.currency)}",
            )
            for o in offerings
        ]
        self.fields["student_timezone"].choices = zone_choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        """The local times in the student's zone, as UTC: each must exist on that day
        (not skipped by a clock change) and lie within what the date arithmetic takes."""
        data = super().clean() or {}
        zone = ZoneInfo(data.get("student_timezone") or "UTC")
        starts: list[datetime] = []
        names: list[str] = []
        for n in range(1, MAX_REQUESTED_TIMES + 1):
            local = data.get(f"time_{n}")
            if local is None:
                continue
            try:
                validation.check_date(local.date(), days_ahead=validation.PLAN_DAYS_AHEAD)
            except forms.ValidationError as exc:
                self.add_error(f"time_{n}", exc)
                continue
            moment = local_to_utc(local.replace(tzinfo=None), zone)
            if moment is None:
                self.add_error(f"time_{n}", "The clocks skip that time on that day.")
                continue
            starts.append(moment)
            names.append(f"time_{n}")
        # Which field each proposed time came from, for the service's refusals.
        data["times"], data["time_fields"] = starts, names
        return data


def _form(request: HttpRequest, tutor: Tutor, *, now: datetime, zone: str) -> TimeRequestForm:
    offerings = [o for o in tutor.offerings.all() if o.is_active]
    choices = presenters.zone_choices(zone, tutor.timezone, now=now)
    kwargs: dict[str, Any] = {"offerings": offerings, "zone_choices": choices, "now": now}
    if request.method == "POST":
        return TimeRequestForm(request.POST, **kwargs)
    initial: dict[str, Any] = {"student_timezone": zone}
    if len(offerings) == 1:
        initial["offering"] = offerings[0].pk
    return TimeRequestForm(initial=initial, **kwargs)


@require_http_methods(["GET", "POST"])
def request_time(request: HttpRequest, slug: str) -> HttpResponse:
    """The student proposes up to three times, in their own zone."""
    tutor = _public_tutor(slug)
    now = timezone.now()
    source = request.POST if request.method == "POST" else request.GET
    zone = presenters.zone_or(source.get("student_timezone") or source.get("tz"), tutor.timezone)
    form = _form(request, tutor, now=now, zone=zone)
    context: dict[str, Any] = {
        "tutor": tutor,
        "zone": zone,
        "form": form,
        "horizon_weeks": settings.SLOT_HORIZON_WEEKS,
        "notice_hours": tutor.min_notice_minutes / 60,
        "latest": horizon_end(tutor, now),
        "max_times": MAX_REQUESTED_TIMES,
    }
    # Errors re-render the form (200, like the booking form): the summary says what to fix.
    if request.method == "GET" or not form.is_valid():
        return render(request, "requests/form.html", context)
    limit = RequestsPerIPThrottle()
    if not limit.allow_request(request, None):  # type: ignore[arg-type]
        return too_many(
            request,
            "requests/form.html",
            context,
            form=form,
            wait=limit.wait(),
            what="requests from here",
        )
    data = form.cleaned_data
    try:
        created = time_requests.time_request_create(
            tutor=tutor,
            offering_id=data["offering"],
            times=data["times"],
            student_name=data["student_name"],
            student_email=data["student_email"],
            note=data["note"],
            student_timezone=data["student_timezone"],
            client=client_address(request),
            now=now,
        )
    except time_requests.TimesRefused as exc:
        for i, message in exc.by_index.items():
            form.add_error(data["time_fields"][i], message)
        return render(request, "requests/form.html", context)
    except ApplicationError as exc:
        apply_error(form, exc)
        return render(request, "requests/form.html", context)
    offering = created.offering
    return render(
        request,
        "requests/sent.html",
        {
            "tutor": tutor,
            "zone": zone,
            "offering": offering,
            "times": created.times,
            "email": created.student_email,
        },
    )


@require_http_methods(["GET", "POST"])
@link_throttled
def offer(request: HttpRequest, token: str) -> HttpResponse:
    """The private link: the offered time in the student's zone, and Hold and pay."""
    try:
        row = time_requests.request_by_offer_token(token)
    except NotFound:
        raise Http404("No offer for that link.") from None
    now = timezone.now()
    tutor = row.tutor
    zone = presenters.zone_or(request.GET.get("tz") or row.student_timezone, tutor.timezone)
    booking = time_requests.offer_booking(row)
    error = ""
    if request.method == "POST":
        try:
            hold = time_requests.offer_hold(request=row, now=now, client=client_address(request))
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect(hold.payment_url)
    slot = row.slot  # request_by_offer_token finds offers (with their slot) only
    return render(
        request,
        "requests/offer.html",
        {
            "tutor": tutor,
            "row": row,
            "offering": row.offering,
            "slot": slot,
            "zone": zone,
            "zone_label": zones.zone_label(zone),
            "price": format_money(row.offering.price_amount, row.offering.currency),
            "open": time_requests.offer_open(row, now=now),
            "booking": booking,
            "error": error,
        },
        status=409 if error else 200,
    )


# --- the tutor ------------------------------------------------------------------------------


@tutor_required
@require_http_methods(["GET"])
def tutor_requests(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    rows = list(time_requests.tutor_requests(tutor=tutor)[:200])
    pending = [r for r in rows if r.status == TimeRequestStatus.PENDING]
    answered = [r for r in rows if r.status != TimeRequestStatus.PENDING]
    return render(
        request,
        "requests/tutor_list.html",
        {
            "tutor": tutor,
            "zone": tutor.timezone,
            "pending": pending,
            "answered": answered,
            "offer_hours": settings.REQUEST_OFFER_HOURS,
        },
    )


@tutor_required
@require_POST
def tutor_request_accept(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    try:
        choice = int(request.POST.get("choice", ""))
    except ValueError:
        choice = 0
    try:
        row = time_requests.time_request_accept(
            tutor=tutor, request_id=pk, choice=choice, now=timezone.now()
        )
    except NotFound:
        raise Http404("No such request.") from None
    except ApplicationError as exc:
        messages.error(request, f"Could not accept that time: {exc.message}")
    else:
        messages.success(
            request, f"Offered to {row.student_name}: they have a private link to book it."
        )
    return redirect("web:tutor-requests")


@tutor_required
@require_POST
def tutor_request_decline(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    try:
        row = time_requests.time_request_decline(
            tutor=tutor, request_id=pk, message=request.POST.get("message", ""), now=timezone.now()
        )
    except NotFound:
        raise Http404("No such request.") from None
    except ApplicationError as exc:
        messages.error(request, f"Could not decline: {exc.message}")
    else:
        messages.success(request, f"Declined; {row.student_name} gets your message by email.")
    return redirect("web:tutor-requests")
