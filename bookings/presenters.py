"""A booking as people see it: one presenter for the API, the pages and the emails.

What a booking shows depends on who looks and when: the video link only once the
session is paid for, the refund only after a cancellation, the policy's deadlines from
the tutor's settings. Those rules live here once, so the JSON of the manage link, the
student's page and the tutor's views cannot drift apart.

The student's private links (manage page, reschedule, the invite download) are the
student's secret: `for_tutor=True` leaves them out, so nothing a tutor receives can act
as the student. Presenters read only the booking and the rows loaded with it (slot,
tutor, offering): no queries of their own.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from .ics import map_link
from .models import Booking, BookingStatus, Mode
from .policy import free_cancellation_until, reschedulable


@dataclass(frozen=True)
class StudentLinks:
    """Absolute URLs that act as the student (anyone holding them can cancel)."""

    manage: str
    cancel: str
    reschedule: str
    invite: str


@dataclass(frozen=True)
class BookingFacts:
    booking: Booking
    # pending | hold_expired | confirmed | cancelled | completed | no_show
    state: str
    place: dict[str, str] | None
    map_url: str | None
    video_url: str | None  # remote and confirmed only
    refund_amount: int | None  # what the cancellation gave back; None unless cancelled
    # The last moment a student's cancellation refunds in full (and a move is allowed).
    free_cancellation_until: datetime
    can_reschedule: bool
    links: StudentLinks | None  # None in anything the tutor receives


def student_links(booking: Booking) -> StudentLinks:
    token = booking.manage_token
    base = settings.PUBLIC_BASE_URL
    return StudentLinks(
        manage=base + reverse("web:manage", args=[token]),
        cancel=base + reverse("web:cancel", args=[token]),
        reschedule=base + reverse("web:reschedule", args=[token]),
        invite=base + reverse("booking-invite", args=[token]),
    )


def booking_facts(booking: Booking, *, now: datetime, for_tutor: bool = False) -> BookingFacts:
    status = booking.status
    if status == BookingStatus.PENDING_PAYMENT:
        running = booking.hold_expires_at is not None and booking.hold_expires_at > now
        state = "pending" if running else "hold_expired"
    elif status == BookingStatus.EXPIRED:
        state = "hold_expired"
    else:
        state = status
    place = booking.offering.place if booking.mode == Mode.IN_PERSON else None
    confirmed = status == BookingStatus.CONFIRMED
    return BookingFacts(
        booking=booking,
        state=state,
        place=place,
        map_url=map_link(place["address"]) if place else None,
        video_url=booking.offering.video_url if confirmed and booking.mode == Mode.REMOTE else None,
        refund_amount=booking.refund_amount if status == BookingStatus.CANCELLED else None,
        free_cancellation_until=free_cancellation_until(booking),
        can_reschedule=reschedulable(booking, now=now),
        links=None if for_tutor else student_links(booking),
    )
