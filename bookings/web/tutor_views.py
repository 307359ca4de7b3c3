"""The tutor's pages for changing a booked session: moving it to another open time, and
deciding what happens to the sessions a new block of days off covers.

Same shape as views.py: parse a form, call a service, render; another tutor's booking
or block is a 404.
"""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from bookings import selectors, services
from bookings.errors import ApplicationError, NotFound, apply_error
from bookings.models import Actor, Booking, BookingStatus, Tutor

from . import presenters
from .forms import BlockCancelForm, TutorRescheduleForm
from .views import tutor_required


def _own_booking(tutor: Tutor, pk: str) -> Booking:
    try:
        return selectors.tutor_booking(tutor=tutor, booking_id=pk)
    except NotFound:
        raise Http404 from None


@tutor_required
@require_http_methods(["GET", "POST"])
def booking_move(request: HttpRequest, tutor: Tutor, pk: str) -> HttpResponse:
    """Move a confirmed session to another open slot of the same mode and length; the
    student gets the updated invite (services.booking_reschedule, as the tutor)."""
    booking = _own_booking(tutor, pk)
    now = timezone.now()
    if booking.status != BookingStatus.CONFIRMED or booking.slot.start <= now:
        messages.error(request, "Only a confirmed session that has not started can be moved.")
        return redirect("web:tutor-booking", pk=booking.pk)
    rows = [
        r
        for r in presenters.picker_slots(
            tutor=tutor,
            now=now,
            mode=booking.mode,
            duration=booking.slot.end - booking.slot.start,
        )
        if r.id != booking.slot_id
    ]
    form = TutorRescheduleForm(request.POST or None, slot_ids=[r.id for r in rows])
    if request.method == "POST" and form.is_valid():
        try:
            moved = services.booking_reschedule(
                booking_id=booking.pk,
                slot_id=form.cleaned_data["slot"],
                now=now,
                actor=Actor.TUTOR,
            )
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            when = services.tutor_local_time(moved.slot.start, tutor)
            messages.success(
                request,
                f"Moved to {when}. {booking.student_name} gets the updated invite by email.",
            )
            return redirect("web:tutor-booking", pk=booking.pk)
    return render(
        request,
        "tutor/booking_move.html",
        {
            "tutor": tutor,
            "booking": booking,
            "zone": tutor.timezone,
            "form": form,
            "days": presenters.by_day(rows, tutor.zone),
            "picked": form.data.get("slot") if form.is_bound else None,
        },
    )


@tutor_required
@require_http_methods(["GET", "POST"])
def block_review(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    """The sessions a blocked period covers (it leaves them standing): keep them, or
    cancel the chosen ones with a full refund and an email to each student."""
    block = get_object_or_404(selectors.tutor_blocks(tutor=tutor), pk=pk)
    now = timezone.now()
    covered = list(selectors.block_bookings(tutor=tutor, block=block, now=now))
    choices = [(str(b.pk), presenters.session_label(b, tutor.zone)) for b in covered]
    form = BlockCancelForm(request.POST or None, choices=choices)
    if request.method == "POST" and form.is_valid():
        try:
            done = services.block_cancel_bookings(
                tutor=tutor,
                block=block,
                booking_ids=form.cleaned_data["bookings"],
                reason=form.cleaned_data["reason"],
                now=now,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            count = "1 session" if len(done) == 1 else f"{len(done)} sessions"
            messages.success(
                request,
                f"Cancelled {count}. Paid sessions are refunded in full and every student "
                "is told by email.",
            )
        return redirect("web:tutor-block", pk=block.pk)
    return render(
        request,
        "tutor/block_review.html",
        {"tutor": tutor, "period": block, "covered": covered, "form": form, "zone": tutor.timezone},
    )
