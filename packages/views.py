"""Package pages: the tutor's /tutor/packages/, a tutor's packages on sale, the
student's package page behind its link, and the simulated checkout for a purchase.
Thin: parse a form, call a service, render."""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import Throttled

from bookings import selectors as booking_selectors
from bookings.api.throttles import (
    client_address,
    hold_rate_check,
    hold_rate_record,
    link_throttled,
)
from bookings.errors import ApplicationError, NotFound, apply_error
from bookings.models import Tutor
from bookings.money import format_money as money
from bookings.web.presenters import by_day, picker_fetch
from bookings.web.views import too_many, tutor_required
from payments import services as payment_services
from payments.models import Payment, PaymentKind, PaymentStatus, Provider

from . import selectors, services
from .forms import BookForm, BuyForm, PackageForm
from .models import Package, Purchase

# --- the tutor's page ---------------------------------------------------------------------


@tutor_required
@require_http_methods(["GET", "POST"])
def tutor_packages(request: HttpRequest, tutor: Tutor) -> HttpResponse:
    """The tutor's packages (add one here) and the purchases with their balances."""
    form = PackageForm(request.POST or None, tutor=tutor)
    if request.method == "POST" and form.is_valid():
        try:
            services.package_create(tutor=tutor, **form.terms())
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Package added.")
            return redirect("packages:tutor-packages")
    now = timezone.now()
    return render(
        request,
        "packages/tutor_packages.html",
        {
            "tutor": tutor,
            "form": form,
            "packages": [
                (p, money(p.price_amount, p.currency)) for p in selectors.tutor_packages(tutor)
            ],
            "purchases": selectors.tutor_purchases(tutor, now=now),
            "now": now,
        },
    )


@tutor_required
@require_http_methods(["GET", "POST"])
def tutor_package_edit(request: HttpRequest, tutor: Tutor, pk: int) -> HttpResponse:
    package = get_object_or_404(Package, pk=pk, tutor=tutor)
    form = PackageForm(request.POST or None, tutor=tutor, package=package)
    if request.method == "POST" and form.is_valid():
        try:
            services.package_update(package=package, **form.terms())
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Package saved. Purchases made before keep their terms.")
            return redirect("packages:tutor-packages")
    return render(
        request,
        "packages/tutor_package_edit.html",
        {"tutor": tutor, "form": form, "package": package},
    )


@tutor_required
def tutor_purchase(request: HttpRequest, tutor: Tutor, pk: str) -> HttpResponse:
    """One purchase's ledger, as the tutor sees it (no link: that is the student's)."""
    purchase = get_object_or_404(Purchase, pk=pk, tutor=tutor, paid_at__isnull=False)
    now = timezone.now()
    return render(
        request,
        "packages/tutor_purchase.html",
        {
            "tutor": tutor,
            "purchase": purchase,
            "balance": selectors.balance(purchase, now=now),
            "entries": selectors.history(purchase),
            "expired": purchase.expired(now),
        },
    )


# --- students -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def on_sale(request: HttpRequest, slug: str) -> HttpResponse:
    """A tutor's packages, each with a form to buy it (then on to Checkout)."""
    tutor = get_object_or_404(Tutor, slug=slug, is_active=True)
    packages = list(selectors.packages_on_sale(tutor))
    form = BuyForm(request.POST or None)
    if request.method == "POST":
        chosen = request.POST.get("package", "")
        package = next((p for p in packages if str(p.pk) == chosen), None)
        if package is None:
            form.add_error(None, "Pick one of the packages.")
        elif form.is_valid():
            email = form.cleaned_data["student_email"]
            try:
                # The same limits as a hold (per client address, then per email): each
                # purchase opens a Stripe session, like a hold does.
                hold_rate_check(email, request=request)
            except Throttled as exc:
                context = _on_sale(tutor, form, packages)
                return too_many(
                    request,
                    "packages/on_sale.html",
                    context,
                    form=form,
                    wait=getattr(exc, "wait", None),
                    what="attempts",
                )
            try:
                start = services.purchase_start(
                    package_id=package.pk,
                    student_name=form.cleaned_data["student_name"],
                    student_email=email,
                    now=timezone.now(),
                )
            except ApplicationError as exc:
                apply_error(form, exc)
            else:
                hold_rate_record(email)
                return redirect(start.payment_url)
    return render(request, "packages/on_sale.html", _on_sale(tutor, form, packages))


def _on_sale(tutor: Tutor, form: BuyForm, packages: list[Package]) -> dict[str, Any]:
    return {
        "tutor": tutor,
        "form": form,
        "packages": [(p, money(p.price_amount, p.currency)) for p in packages],
    }


def _purchase_or_404(token: str) -> Purchase:
    try:
        return selectors.purchase_by_token(token)
    except NotFound:
        raise Http404 from None


def _open_slots(purchase: Purchase, *, now: datetime) -> list[Any]:
    """The tutor's open slots that sell this purchase's offering, until it expires."""
    end = now + picker_fetch()
    if purchase.expires_at is not None:
        end = min(end, purchase.expires_at + timedelta(days=1))
    items = booking_selectors.open_slots(
        start=now, end=end, now=now, tutor=purchase.tutor, mode=purchase.offering.mode
    )
    return [
        item.slot
        for item in items
        if (o := item.offerings.get(purchase.offering.mode)) and o.pk == purchase.offering_id
    ]


@link_throttled
@require_http_methods(["GET", "POST"])
def purchase_page(request: HttpRequest, token: str) -> HttpResponse:
    """The student's package: balance, history, and the slots a credit can book."""
    purchase = _purchase_or_404(token)
    now = timezone.now()
    if request.method == "GET" and purchase.paid_at is None and request.GET.get("session_id"):
        # Back from Checkout before the webhook: ask Stripe, so they see their credits.
        services.purchase_refresh(purchase=purchase, now=now)
        purchase.refresh_from_db()
    form = BookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            booking = services.purchase_book(
                purchase_id=purchase.pk,
                slot_id=form.cleaned_data["slot"],
                now=now,
                client=client_address(request),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Booked with one credit. The invite is on its way by email.")
            return redirect(booking.manage_path)
        return redirect(purchase.path)
    zone = purchase.tutor.zone
    return render(
        request,
        "packages/purchase.html",
        {
            "purchase": purchase,
            "balance": selectors.balance(purchase, now=now),
            "entries": selectors.history(purchase),
            "expired": purchase.expired(now),
            "days": by_day(_open_slots(purchase, now=now), zone),
            "zone": zone,
            "price": money(purchase.price_amount, purchase.currency),
        },
    )


@require_http_methods(["GET", "POST"])
def simulated_checkout(request: HttpRequest, payment_id: str) -> HttpResponse:
    """A stand-in for Stripe Checkout for a purchase (DEBUG on, no Stripe key)."""
    if not payment_services.simulated_checkout_allowed():
        raise Http404
    payment = get_object_or_404(
        Payment, pk=payment_id, provider=Provider.SIMULATED, kind=PaymentKind.PURCHASE
    )
    purchase = get_object_or_404(
        Purchase.objects.select_related("tutor", "offering"), payment=payment
    )
    if request.method == "POST":
        if request.POST.get("action") == "pay":
            payment_services.simulated_pay(payment=payment, now=timezone.now())
        return redirect(purchase.path)
    return render(
        request,
        "packages/simulated_checkout.html",
        {
            "purchase": purchase,
            "price": money(payment.amount, payment.currency),
            "open": payment.status == PaymentStatus.OPEN,
        },
    )
