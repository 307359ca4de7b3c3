"""The only module that talks to Stripe. Everything else calls these functions.

Uses the official library's typed StripeClient, so mypy checks each call's parameters.
STRIPE_API_BASE points it at a local fake or stripe-mock in tests and development.
Every call here is a network call: never make one inside a database transaction.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)


class GatewayError(Exception):
    """Stripe could not be reached, timed out, or refused the request."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SignatureError(Exception):
    """A webhook whose Stripe-Signature does not verify."""


class MalformedEvent(Exception):
    """A correctly signed webhook body that is not an event object."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str | None  # open | complete | expired
    payment_status: str | None  # paid | unpaid | no_payment_required
    payment_intent: str | None
    client_reference_id: str | None
    amount_total: int | None
    currency: str | None


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str | None  # pending | succeeded | failed | canceled | requires_action


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


@cache
def _client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        # Our own retry logic (reconciliation, refund retries) takes over after this.
        max_network_retries=1,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


def _session(obj: stripe.checkout.Session) -> CheckoutSession:
    # The library's objects are not dicts (no .get() since v13): read typed attributes.
    intent = obj.payment_intent
    return CheckoutSession(
        id=obj.id,
        url=obj.url,
        status=obj.status,
        payment_status=obj.payment_status,
        payment_intent=intent if isinstance(intent, str) or intent is None else intent.id,
        client_reference_id=obj.client_reference_id,
        amount_total=obj.amount_total,
        currency=obj.currency,
    )


def _fail(exc: stripe.StripeError) -> GatewayError:
    # Connection trouble, rate limits and Stripe's own 5xx are worth retrying; a refused
    # request (bad parameters, declined) is not.
    status = getattr(exc, "http_status", None)
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is not None and status >= 500
    )
    logger.warning("stripe error (%s, retryable=%s): %s", type(exc).__name__, retryable, exc)
    return GatewayError(exc.user_message or str(exc) or type(exc).__name__, retryable=retryable)


def create_checkout_session(
    *,
    booking_id: str | None,
    payment_id: str,
    amount: int,
    currency: str,
    product_name: str,
    description: str,
    customer_email: str,
    expires_at: datetime,
    success_url: str,
    cancel_url: str,
    quantity: int = 1,
) -> CheckoutSession:
    """`amount` is one unit's price; a weekly series buys `quantity` sessions. A
    purchase (no `booking_id`) is named by its payment alone."""
    reference = booking_id or payment_id
    metadata = {"booking_id": booking_id} if booking_id else {"purchase_payment_id": payment_id}
    try:
        session = _client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": quantity,
                        "price_data": {
                            "currency": currency,
                            "unit_amount": amount,
                            "product_data": {"name": product_name, "description": description},
                        },
                    }
                ],
                "client_reference_id": reference,
                # payment_id lets a webhook recognise our own session even if we
                # crashed before storing its id (see webhooks._payment_for_session).
                "metadata": {**metadata, "payment_id": payment_id},
                "payment_intent_data": {"metadata": metadata},
                "customer_email": customer_email,
                "expires_at": int(expires_at.timestamp()),
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            options={"idempotency_key": f"checkout-{reference}"},
        )
    except stripe.StripeError as exc:
        raise _fail(exc) from exc
    return _session(session)


def retrieve_checkout_session(session_id: str) -> CheckoutSession:
    try:
        return _session(_client().v1.checkout.sessions.retrieve(session_id))
    except stripe.StripeError as exc:
        raise _fail(exc) from exc


def expire_checkout_session(session_id: str) -> CheckoutSession:
    try:
        return _session(_client().v1.checkout.sessions.expire(session_id))
    except stripe.StripeError as exc:
        raise _fail(exc) from exc


def create_refund(
    *, payment_intent: str, amount: int, idempotency_key: str, booking_id: str
) -> RefundResult:
    try:
        refund = _client().v1.refunds.create(
            params={
                "payment_intent": payment_intent,
                "amount": amount,
                "metadata": {"booking_id": booking_id},
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as exc:
        raise _fail(exc) from exc
    return RefundResult(id=refund.id, status=refund.status)


def parse_webhook(payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify the Stripe-Signature header and return the event as a plain dict.

    SignatureError for a missing or wrong signature; MalformedEvent for a signed body
    that is not a JSON object (Stripe never sends one, so only a bug or a test does).
    """
    if not signature or not settings.STRIPE_WEBHOOK_SECRET:
        raise SignatureError("missing signature or webhook secret")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            text,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE,  # an older signature is a replay
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise SignatureError(str(exc)) from exc
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvent("the body is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedEvent("the body is not a JSON object")
    return event
