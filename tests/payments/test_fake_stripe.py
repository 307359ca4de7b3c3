"""The fake itself: it must speak Stripe's encoding and signing, or the other tests lie."""

import json

import stripe as stripe_library

from .fake_stripe import FakeStripe, decode_form


def test_brackets_decode_into_nested_dicts_and_lists():
    pairs = [
        ("line_items[0][price_data][unit_amount]", "9000"),
        ("line_items[0][quantity]", "1"),
        ("line_items[1][quantity]", "2"),
        ("metadata[booking_id]", "b-1"),
        ("mode", "payment"),
    ]
    assert decode_form(pairs) == {
        "line_items": [{"price_data": {"unit_amount": "9000"}, "quantity": "1"}, {"quantity": "2"}],
        "metadata": {"booking_id": "b-1"},
        "mode": "payment",
    }


def test_events_it_signs_verify_with_the_official_library():
    event = FakeStripe.event("checkout.session.completed", {"id": "cs_test_1"})
    payload = json.dumps(event)
    header = FakeStripe.sign(payload, "whsec_x")
    verified = stripe_library.Webhook.construct_event(payload, header, "whsec_x")
    assert verified.id == event["id"]
