"""Buying a package: Checkout, the webhook's money checks, credits granted once, the link
by email."""

from datetime import timedelta

import pytest
from django.core import mail

from packages.models import Entry, EntryKind, Purchase
from packages.selectors import balance, purchase_by_token
from payments.models import Payment, PaymentKind, PaymentStatus, Refund
from tests.payments.conftest import deliver

pytestmark = pytest.mark.django_db


def buy_through_api(api, package) -> dict:
    response = api.post(
        f"/api/packages/{package.pk}/buy/",
        {"student_name": "Sam Student", "student_email": "Sam@Example.com"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_buying_opens_a_checkout_for_the_packages_price_and_grants_nothing_yet(
    api, frozen, package, stripe
):
    body = buy_through_api(api, package)
    purchase = Purchase.objects.get(pk=body["id"])
    session = stripe.session(purchase.payment.checkout_session_id)
    assert body["payment_url"] == session["url"]
    assert (session["amount_total"], session["currency"]) == (40000, "usd")
    assert purchase.payment.kind == PaymentKind.PURCHASE
    assert purchase.payment.booking is None
    assert not Entry.objects.exists()
    assert mail.outbox == []


def test_the_paid_webhook_grants_the_credits_once_and_emails_the_link(
    api, frozen, now, package, stripe
):
    purchase = Purchase.objects.get(pk=buy_through_api(api, package)["id"])
    session_id = purchase.payment.checkout_session_id
    stripe.complete(session_id)
    event = stripe.session_event("checkout.session.completed", session_id)
    assert deliver(event).json()["outcome"] == "confirmed"
    again = stripe.session_event("checkout.session.completed", session_id)
    assert deliver(again).json()["outcome"] == "already_paid"

    purchase.refresh_from_db()
    assert purchase.paid_at == now
    assert purchase.expires_at == now + timedelta(days=183)
    assert list(purchase.entries.values_list("kind", "credits")) == [(EntryKind.PURCHASE, 5)]
    assert balance(purchase, now=now) == 5
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["sam@example.com"]
    assert purchase.url in message.body
    assert purchase_by_token(purchase.token) == purchase

    detail = api.get(f"/api/packages/{purchase.token}/").json()
    assert (detail["balance"], detail["paid"], detail["sessions"]) == (5, True, 5)
    assert [e["kind"] for e in detail["entries"]] == ["purchase"]


@pytest.mark.parametrize(
    ("amount", "currency", "why"),
    [(39999, "usd", "wrong_amount"), (40000, "eur", "wrong_currency")],
)
def test_money_that_does_not_match_grants_no_credits_and_is_refunded(
    api, frozen, package, stripe, amount, currency, why
):
    purchase = Purchase.objects.get(pk=buy_through_api(api, package)["id"])
    session = stripe.complete(purchase.payment.checkout_session_id)
    session.update(amount_total=amount, currency=currency)
    assert deliver(stripe.event("checkout.session.completed", session)).json()["outcome"] == (
        "refused"
    )
    purchase.refresh_from_db()
    assert purchase.paid_at is None
    assert not Entry.objects.exists()
    assert Payment.objects.get().status == PaymentStatus.REFUSED
    assert Refund.objects.get().reason == f"refused: {why}"
    assert mail.outbox == []


def test_a_session_that_is_not_the_purchases_own_grants_nothing(api, frozen, package, stripe):
    purchase = Purchase.objects.get(pk=buy_through_api(api, package)["id"])
    other = stripe.complete(purchase.payment.checkout_session_id)
    other.update(id="cs_test_someone_elses")
    assert deliver(stripe.event("checkout.session.completed", other)).json()["outcome"] == (
        "unknown session"
    )
    assert not Entry.objects.exists()


def test_an_expired_checkout_leaves_the_purchase_unpaid(api, frozen, package, stripe):
    purchase = Purchase.objects.get(pk=buy_through_api(api, package)["id"])
    stripe.expire(purchase.payment.checkout_session_id)
    event = stripe.session_event("checkout.session.expired", purchase.payment.checkout_session_id)
    assert deliver(event).json()["outcome"] == "expired"
    assert Payment.objects.get().status == PaymentStatus.EXPIRED
    assert not Entry.objects.exists()


def test_an_inactive_package_cannot_be_bought(api, frozen, package):
    package.active = False
    package.save()
    response = api.post(
        f"/api/packages/{package.pk}/buy/",
        {"student_name": "Sam", "student_email": "sam@example.com"},
        format="json",
    )
    assert response.status_code == 404
    assert not Purchase.objects.exists()


def test_the_simulated_checkout_pays_a_purchase(client, frozen, now, package):
    body = client.post(
        f"/t/{package.tutor.slug}/packages/",
        {"package": package.pk, "student_name": "Sam", "student_email": "sam@example.com"},
    )
    assert body.status_code == 302
    page = client.get(body["Location"])
    assert page.status_code == 200
    response = client.post(body["Location"], {"action": "pay"})
    purchase = Purchase.objects.get()
    assert response["Location"] == purchase.path
    assert balance(purchase, now=now) == 5
    assert len(mail.outbox) == 1


def test_buying_on_the_web_page_is_throttled_like_a_hold(client, frozen, package, stripe, settings):
    """Each purchase opens a Stripe session: the web form has the API's limits."""
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"holds_ip": "2/min", "holds_email": None, "manage_ip": None},
    }
    form = {"package": package.pk, "student_name": "Sam", "student_email": "sam@example.com"}
    url = f"/t/{package.tutor.slug}/packages/"
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302
    third = client.post(url, form)
    assert third.status_code == 429
    assert int(third["Retry-After"]) > 0
    assert "Too many attempts" in third.content.decode()
    assert Purchase.objects.count() == 2
    assert len(stripe.sessions) == 2
    cache.clear()
