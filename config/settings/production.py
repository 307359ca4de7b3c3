"""Production: every secret comes from the environment, with no default."""

from django.core.exceptions import ImproperlyConfigured

from config.observability import init_sentry

from .base import *  # noqa: F403
from .base import (
    EMAIL_BACKEND,
    LOGGING,
    MIDDLEWARE,
    SENTRY_DSN,
    broker_transport_options,
    database_from_env,
    env,
)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Serve collected static files from gunicorn itself (compressed, cache-forever names).
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Production sends real email: EMAIL_URL (smtp://...) is required.
if EMAIL_BACKEND.endswith("filebased.EmailBackend"):
    raise ImproperlyConfigured("Set EMAIL_URL (e.g. smtp+tls://user:pass@smtp.example.com:587).")
DATABASES = {"default": database_from_env(env.str("DATABASE_URL"))}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)

if SENTRY_DSN:
    init_sentry(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # type: ignore[index]

# Real money only: no simulated checkout, no missing keys.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET")

# Encrypts calendar links and passwords at rest (calendars/crypto.py); never derived
# from SECRET_KEY here. Without it `check --deploy` fails (calendars.E001), and so does
# every use of a calendar, with a message naming this variable.
CALENDAR_CREDENTIALS_KEY = env.str("CALENDAR_CREDENTIALS_KEY", default="")
CALENDAR_CREDENTIALS_KEY_REQUIRED = True
