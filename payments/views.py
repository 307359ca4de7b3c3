"""Stripe's webhook, the return page after checkout, and the simulated checkout."""

import logging

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from bookings.api.throttles import link_throttled
from bookings.errors import NotFound
from bookings.selectors import booking_by_token
from bookings.web.presenters import booking_page

from . import gateway, services, webhooks
from .models import Payment, PaymentStatus, Provider

logger = logging.getLogger(__name__)


@csrf_exempt  # Stripe signs the request instead; the signature is checked below.
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = gateway.parse_webhook(request.body, request.headers.get("Stripe-Signature"))
    except gateway.SignatureError:
        return JsonResponse(
            {"code": "bad_signature", "message": "Signature verification failed.", "fields": {}},
            status=400,
        )
    except gateway.MalformedEvent as exc:
        return JsonResponse(
            {"code": "malformed_request", "message": f"Not an event: {exc}.", "fields": {}},
            status=400,
        )
    # An exception here becomes a 500, and Stripe retries the event: what we want when
    # the database is briefly unavailable.
    outcome = webhooks.handle_event(event, now=timezone.now())
    return JsonResponse({"received": True, "outcome": outcome})


@link_throttled
def checkout_return(request: HttpRequest, token: str) -> HttpResponse:
    """Stripe's success/cancel URL. Settles from Stripe if the webhook has not come yet,
    so the student never waits on a webhook to see "confirmed"."""
    try:
        booking = booking_by_token(token)
    except NotFound:
        raise Http404 from None
    payment = Payment.objects.checkouts().filter(booking=booking).first()
    if payment is not None and payment.status in (PaymentStatus.OPEN, PaymentStatus.EXPIRED):
        services.payment_refresh(payment=payment, now=timezone.now())
    return HttpResponseRedirect(booking.manage_path)


@require_http_methods(["GET", "POST"])
def simulated_checkout(request: HttpRequest, payment_id: str) -> HttpResponse:
    """A stand-in for Stripe Checkout in development (DEBUG on, no Stripe key)."""
    if not services.simulated_checkout_allowed():
        raise Http404
    payment = get_object_or_404(
        Payment.objects.select_related(
            "booking", "booking__slot", "booking__tutor", "booking__offering"
        ),
        pk=payment_id,
        provider=Provider.SIMULATED,
        booking__isnull=False,  # a purchase's simulated checkout is its seller's page
    )
    if request.method == "POST":
        now = timezone.now()
        if request.POST.get("action") == "pay":
            services.simulated_pay(payment=payment, now=now)
        else:
            services.simulated_cancel(payment=payment, now=now)
        assert payment.booking is not None  # noqa: S101 - filtered above
        return HttpResponseRedirect(payment.booking.manage_path)
    booking = payment.booking
    assert booking is not None  # noqa: S101 - filtered above
    now = timezone.now()
    # The same facts, times (student's zone) and money format as the booking form.
    page = booking_page(booking, now=now)
    expires = booking.hold_expires_at
    return render(
        request,
        "payments/simulated_checkout.html",
        {
            "payment": payment,
            "booking": booking,
            "page": page,
            "zone": page.zone,
            "hold_expired": expires is not None and expires <= now,
        },
    )
