"""{% packages_on_sale tutor as packages %}: what the tutor's public page advertises.

The page's ETag (bookings/conditional.py) follows the tutor's availability version,
which packages.services raises on every change of an offer, so a cached page never
hides a new package or shows one taken off sale."""

from django import template

from bookings.models import Tutor
from bookings.money import format_money
from packages import selectors

register = template.Library()


@register.simple_tag
def packages_on_sale(tutor: Tutor) -> list[dict[str, object]]:
    return [
        {
            "sessions": package.sessions,
            "title": package.offering.title,
            "price": format_money(package.price_amount, package.currency),
            "valid_days": package.valid_days,
        }
        for package in selectors.packages_on_sale(tutor)
    ]
