"""{% pending_requests tutor %}: the tutor's unanswered time requests, for the nav."""

from django import template

from bookings import time_requests
from bookings.models import Tutor

register = template.Library()


@register.simple_tag
def pending_requests(tutor: Tutor) -> int:
    return time_requests.tutor_pending_count(tutor=tutor)
