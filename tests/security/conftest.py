"""The payment fixtures (a fake Stripe, a held booking, its checkout session) for
the money probes."""

from tests.payments.conftest import (  # noqa: F401 - fixtures re-exported for this package
    fake_stripe,
    held,
    session_id,
    stripe,
)
