"""Developer machine / `make run`: embedded defaults, nothing to install but Python."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A fixed key is fine for a loopback-only development server; production has no default.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-only-not-a-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

VAR_DIR.mkdir(exist_ok=True)
(VAR_DIR / "celery" / "queue").mkdir(parents=True, exist_ok=True)
(VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
(VAR_DIR / "celery" / "control").mkdir(parents=True, exist_ok=True)

# No Stripe key on a developer machine: students pay on a local simulated checkout page.
PAYMENTS_SIMULATED = DEBUG
