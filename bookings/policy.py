"""The cancellation policy, in one place: what a cancellation refunds, and until when
a student may cancel for free or move the session.

Pure functions of a booking (with its slot and tutor loaded) and the time; services
enforce them, presenters and emails state them.
"""

from datetime import datetime, timedelta

from .models import Actor, Booking, BookingStatus, Tutor


def free_cancellation_until(booking: Booking) -> datetime:
    """The last moment a student's cancellation refunds in full (and a move is allowed)."""
    return slot_free_cancellation_until(tutor=booking.tutor, start=booking.slot.start)


def slot_free_cancellation_until(*, tutor: Tutor, start: datetime) -> datetime:
    """The same deadline for a time not booked yet (what the form and checkout state)."""
    return start - timedelta(hours=tutor.full_refund_hours)


def policy_refund(booking: Booking, *, actor: str, now: datetime) -> int:
    """What cancelling now gives back, in minor units.

    Nothing was paid for a hold. A tutor's cancellation always refunds in full; a
    student's refunds in full until free_cancellation_until(), and nothing after.
    """
    if booking.status != BookingStatus.CONFIRMED:
        return 0
    if actor == Actor.TUTOR:
        return booking.price_amount
    return booking.price_amount if now <= free_cancellation_until(booking) else 0


def reschedulable(booking: Booking, *, now: datetime) -> bool:
    """A student may move a confirmed session while cancelling would refund it in full."""
    return booking.status == BookingStatus.CONFIRMED and now <= free_cancellation_until(booking)
