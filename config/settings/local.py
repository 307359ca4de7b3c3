"""Developer machine / `make run`: embedded defaults, nothing to install but Python."""

from .base import *  # noqa: F403
from .base import MIDDLEWARE, VAR_DIR, env

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

# `make run` serves through gunicorn, which has no static file handler: WhiteNoise serves
# them, as in production. With DEBUG on it reads the apps' static folders directly (no
# collectstatic needed; `make run` runs it anyway, for DJANGO_DEBUG=False).
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],
]

# Throttle counters shared by gunicorn's processes: a file cache under var/ unless
# CACHE_URL names Redis (each process counting alone would multiply every limit).
if not env.str("CACHE_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
