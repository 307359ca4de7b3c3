"""Test settings: SQLite by default, PostgreSQL when DATABASE_URL says so (CI runs both)."""

from .base import *  # noqa: F403
from .base import BASE_DIR, broker_transport_options, database_from_env, env

SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PUBLIC_BASE_URL = "http://testserver"

# pytest-django creates the test database itself; the file name only has to be local.
DATABASES = {"default": database_from_env(f"sqlite:///{BASE_DIR / 'var' / 'test.sqlite3'}")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = True
# Tests log in with the test client, which gives axes no request; one test turns it on.
AXES_ENABLED = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"holds_ip": None, "holds_email": None, "manage_ip": None},
}
CELERY_TASK_EAGER_PROPAGATES = True
# Off like the API's throttles; tests/security/test_password_reset.py turns them on.
PASSWORD_RESET_RATE_PER_IP = ""
PASSWORD_RESET_RATE_PER_EMAIL = ""

# Tests that need Stripe point STRIPE_SECRET_KEY/STRIPE_API_BASE at a local fake Stripe.
PAYMENTS_SIMULATED = True
STRIPE_SECRET_KEY = ""
STRIPE_WEBHOOK_SECRET = "whsec_test_secret"  # noqa: S105
STRIPE_API_BASE = ""
