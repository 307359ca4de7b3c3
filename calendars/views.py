"""The tutor's calendars page: their sources, how each sync goes, sessions a busy time
now covers, and the forms that add, fix, sync, pause and remove sources. Thin: each view
parses a form, calls a service or a selector, and renders or redirects."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from bookings.errors import ApplicationError, NotFound, apply_error
from bookings.models import Tutor
from bookings.web.views import tutor_required

from . import selectors, services
from .forms import SourceEditForm, SourceForm
from .models import CalendarSource


def _source(tutor: Tutor, pk: int) -> CalendarSource:
    try:
        return selectors.tutor_source(tutor=tutor, source_id=pk)
    except NotFound:
        raise Http404("No such calendar.") from None


@tutor_required
@require_http_methods(["GET", "POST"])
def calendars(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    now = timezone.now()
    form = SourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.source_create(tutor=tutor, now=now, **form.cleaned_data)
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Calendar added. Its busy times appear after its first sync.")
            return redirect("calendars:tutor-calendars")
    return render(
        request,
        "calendars/tutor_calendars.html",
        {
            "tutor": tutor,
            "zone": tutor.timezone,
            "sources": list(selectors.tutor_sources(tutor=tutor)),
            "conflicts": selectors.tutor_conflicts(tutor=tutor, now=now),
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@tutor_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    source = _source(tutor, pk)
    form = SourceEditForm(request.POST or None, initial={"name": source.name})
    if request.method == "POST" and form.is_valid():
        username, password = form.credentials()
        try:
            services.source_update(
                source=source,
                now=timezone.now(),
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"] or None,
                username=username,
                password=password,
            )
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"“{form.cleaned_data['name']}” saved.")
            return redirect("calendars:tutor-calendars")
    return render(
        request,
        "calendars/tutor_calendar_edit.html",
        {"tutor": tutor, "source": source, "form": form},
        status=400 if form.errors else 200,
    )


@tutor_required
@require_POST
def sync(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    source = _source(tutor, pk)
    services.source_sync_soon(source=source, now=timezone.now())
    messages.success(request, f"Syncing “{source.name}”. Refresh in a moment to see the result.")
    return redirect("calendars:tutor-calendars")


@tutor_required
@require_POST
def pause(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    source = _source(tutor, pk)
    resume = not source.is_active
    services.source_update(source=source, now=timezone.now(), is_active=resume)
    messages.success(
        request,
        f"“{source.name}” syncs again."
        if resume
        else f"“{source.name}” is paused: its busy times stay until you remove it.",
    )
    return redirect("calendars:tutor-calendars")


@tutor_required
@require_POST
def delete(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    source = _source(tutor, pk)
    services.source_delete(source=source, now=timezone.now())
    messages.success(request, f"“{source.name}” removed; the times it held are open again.")
    return redirect("calendars:tutor-calendars")
