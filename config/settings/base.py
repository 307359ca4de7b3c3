"""Settings shared by every environment; each value comes from the environment.

local.py, test.py and production.py import this module and change only what differs.
"""

import re
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# SECRET_KEY is set by each environment's module: production has no default.
# Manage links and calendar feed links are signed with it (bookings/tokens.py): to
# rotate it without breaking the links already emailed, put the old key here (comma-
# separated, newest first) until those links no longer matter.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])
# Absolute base of the links we hand out (manage links, Stripe return URLs, emails).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "django_guid",
    "accounts",
    "bookings",
    "payments",
    "calendars",
    "packages",
]

MIDDLEWARE = [
    # First: every later middleware, view and log line of the request sees its id.
    "django_guid.middleware.guid_middleware",
    "config.observability.AccessLogMiddleware",
    "config.observability.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Locks out repeated failed logins (admin and tutor login) per username and IP.
    "axes.middleware.AxesMiddleware",
    # Last, so it sees a view's Http404 first: the site's 404 page even with DEBUG on.
    "config.errors.NotFoundPageMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)  # hours
# Username and IP together: an attacker cannot lock the tutor out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address as the API's throttles see it (PROXY_COUNT trusted proxies): on its
# own axes would take REMOTE_ADDR, the proxy's, shared by every client behind it.
AXES_CLIENT_IP_CALLABLE = "accounts.limits.client_ip"
# Password reset requests (accounts.views), counted per client address and per email.
PASSWORD_RESET_RATE_PER_IP = env.str("THROTTLE_PASSWORD_RESETS_PER_IP", default="10/hour")
PASSWORD_RESET_RATE_PER_EMAIL = env.str("THROTTLE_PASSWORD_RESETS_PER_EMAIL", default="3/hour")

# Largest request body accepted (JSON bodies here are tiny; webhooks are a few KB).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# Content-Security-Policy: our own assets, and Stripe's for checkout.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "https://js.stripe.com"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "https://api.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://checkout.stripe.com"],
        "form-action": ["'self'", "https://checkout.stripe.com"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Caches hold the API's throttle counters: shared (Redis) in production.
_cache_url = env.str("CACHE_URL", default="")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            # A hung Redis must cost a request half a second, not a worker.
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
        if _cache_url.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env(default_url: str) -> dict:
    """DATABASE_URL → Django settings, with the SQLite options we rely on.

    SQLite runs in WAL mode so readers never block the writer, and every transaction
    starts with BEGIN IMMEDIATE: the write lock is taken up front, so a check made
    inside a transaction (is this slot free?) cannot be invalidated by another process
    before our insert. select_for_update() is a no-op on SQLite; IMMEDIATE is what makes
    lock-and-check correct there when web and worker processes write at once.
    """
    db = env.db_url_config(env.str("DATABASE_URL", default=default_url))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("OPTIONS", {}).update(
            {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            }
        )
    else:
        db.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        db.setdefault("CONN_HEALTH_CHECKS", True)
        if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
            # Bind parameters on the server, so psycopg can prepare a statement the
            # second time a connection runs it: PostgreSQL then skips parsing and
            # planning, a good part of each short query's time (see bench/core.py).
            # Turn off behind a transaction-pooling PgBouncer older than 1.21.
            db.setdefault("OPTIONS", {}).update(
                {"server_side_binding": True, "prepare_threshold": 2}
            )
    return db


DATABASES = {"default": database_from_env(f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

# --- Email ------------------------------------------------------------------------------
# EMAIL_URL picks the transport, in django-environ's URL schemes: smtp://mailpit:1025 in
# docker compose, smtp+tls://user:pass@host:587 (STARTTLS) or smtp+ssl://user:pass@host:465
# for a provider. Unset, emails are written as files under EMAIL_FILE_PATH (var/mail/)
# so `make run` users can open them.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
_email = env.email_url("EMAIL_URL", default="filemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
# The parts a URL leaves out (a file backend's URL has none) keep Django's defaults.
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tutoring <bookings@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
# The right-hand side of new calendar UIDs and Message-IDs ("<random>@<this>"), a plain
# domain name. Each booking stores its UID and each email its Message-ID, so changing
# this (or PUBLIC_BASE_URL) later never breaks an invite already sent: it only names
# who made the new ones. Default: the domain of DEFAULT_FROM_EMAIL.
_from_domain = parseaddr(DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
CALENDAR_UID_DOMAIN = env.str("CALENDAR_UID_DOMAIN", default="") or _from_domain or "localhost"
if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", CALENDAR_UID_DOMAIN):
    if env.str("CALENDAR_UID_DOMAIN", default=""):
        raise ImproperlyConfigured("CALENDAR_UID_DOMAIN must be a domain name, e.g. example.com.")
    CALENDAR_UID_DOMAIN = "localhost"  # DEFAULT_FROM_EMAIL's domain is an address literal

LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # plain | json
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
        # Without a handler, Python's last-resort handler would print the record anyway.
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Every record reaches the one redacting handler above. Django's defaults would
        # print "Not Found: /bookings/<token>/" through their own console handler (with
        # DEBUG on) and mail 500s from inside the request (with ADMINS set): dropped.
        "django": {"handlers": [], "propagate": True},
        # runserver's request lines (make dev): only 4xx/5xx, redacted; our access log
        # (config.observability) has every request.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # django-guid narrates every id it takes or makes at INFO; refused ids are warnings.
        "django_guid": {"level": "WARNING"},
        # The tutors' calendar addresses are secrets (Google's ".../private-<hex>/basic.ics"
        # has no shape the redaction can know). urllib3 prints every URL it fetches at
        # DEBUG and the caldav client logs server answers (with their paths) up to
        # CRITICAL: neither reaches the log; calendars.services records each failure in
        # plain words on the source instead.
        "urllib3": {"level": "WARNING"},
        "caldav": {"handlers": ["null"], "propagate": False},
    },
}

# Request ids (config/observability.py): taken from X-Request-ID only when it is a
# UUID, else made up; returned in the same header; carried into the Celery tasks a
# request queues (a message header), and made up for tasks beat starts.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": False,  # no CORS clients read it
    "INTEGRATIONS": [CeleryIntegration()],
}

# Optional error reporting.
SENTRY_DSN = env.str("SENTRY_DSN", default="")

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "bookings.api.errors.exception_handler",
    # Holds and manage-link lookups are throttled (bookings/api/throttles.py).
    "DEFAULT_THROTTLE_RATES": {
        "holds_ip": env.str("THROTTLE_HOLDS_PER_IP", default="20/min"),
        "holds_email": env.str("THROTTLE_HOLDS_PER_EMAIL", default="10/hour"),
        "manage_ip": env.str("THROTTLE_MANAGE_PER_IP", default="120/min"),
        # Time requests (bookings/time_requests.py) per client address.
        "requests_ip": env.str("THROTTLE_REQUESTS_PER_IP", default="10/hour"),
    },
    "NUM_PROXIES": env.int("PROXY_COUNT", default=0),
    # DRF's parsers, with JSON that answers 400 where DRF's would fail with a 500
    # (bookings/api/fields.py: deep nesting, lone surrogates).
    "DEFAULT_PARSER_CLASSES": [
        "bookings.api.fields.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tutoring bookings API",
    "DESCRIPTION": (
        "Public slots and bookings for students; /api/tutor/ for the tutor's own "
        "offerings, availability and bookings (session or token auth)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets are served by us, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bookings.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "BookingStatusEnum": "bookings.models.BookingStatus",
        "ModeEnum": "bookings.models.Mode",
        "TimeRequestStatusEnum": "bookings.models.TimeRequestStatus",
    },
}

# --- Celery ---------------------------------------------------------------------------
# kombu's filesystem transport needs no server and works across processes on one host:
# the embedded default for `make run`. Production points this at Redis (or RabbitMQ).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")


def broker_transport_options(url: str) -> dict:
    if url.startswith("filesystem://"):
        queue_dir = VAR_DIR / "celery" / "queue"
        return {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(VAR_DIR / "celery" / "processed"),
            "control_folder": str(VAR_DIR / "celery" / "control"),
            "store_processed": False,
            # The transport polls its folder; the default 1 s makes emails feel slow.
            "polling_interval": 0.2,
        }
    if url.startswith(("redis://", "rediss://")):
        # Queuing happens in web requests (on commit). If Redis is down or hung, give
        # up fast: the outbox row is committed and the minute sweep delivers it later.
        # max_retries=0: a failed connect raises at once instead of kombu's retry loop.
        return {"socket_timeout": 2, "socket_connect_timeout": 1, "max_retries": 0}
    return {}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
# Never retry a publish inside a web request: see broker_transport_options.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers log through LOGGING above (request ids, JSON in production), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "expire-holds": {
        "task": "bookings.tasks.expire_holds",
        "schedule": timedelta(minutes=1),
    },
    "send-due-notifications": {
        "task": "bookings.tasks.send_due_notifications",
        "schedule": timedelta(minutes=1),
    },
    "materialise-slots": {
        "task": "bookings.tasks.materialise_slots",
        "schedule": timedelta(hours=1),
    },
    "expire-packages": {
        "task": "packages.tasks.expire_purchases",
        "schedule": timedelta(hours=1),
    },
    "reconcile-payments": {
        "task": "payments.tasks.reconcile",
        "schedule": timedelta(minutes=5),
    },
    "retry-refunds": {
        "task": "payments.tasks.refunds_retry",
        "schedule": timedelta(minutes=5),
    },
    # Housekeeping: see RETENTION_DAYS below.
    "prune-notifications": {
        "task": "bookings.tasks.prune_notifications",
        "schedule": timedelta(hours=1),
    },
    "prune-stripe-events": {
        "task": "payments.tasks.prune_stripe_events",
        "schedule": timedelta(hours=1),
    },
    # Requested times: pending ones whose times passed, unused private offers.
    "expire-time-requests": {
        "task": "bookings.tasks.expire_time_requests",
        "schedule": timedelta(minutes=5),
    },
    "send-due-request-emails": {
        "task": "bookings.tasks.send_due_request_emails",
        "schedule": timedelta(minutes=1),
    },
    # Queues the tutors' calendars that are due (each every CALENDAR_SYNC_MINUTES).
    "sync-calendars": {
        "task": "calendars.tasks.sync_due",
        "schedule": timedelta(minutes=1),
    },
}

# --- Housekeeping -----------------------------------------------------------------------
# Stripe webhook events and sent or void outbox rows older than this many days are
# deleted (never bookings, payments, refunds or status logs). Stripe redelivers an event
# for up to three days, and an outbox row is what keeps an email from being owed twice:
# a week is the least that keeps both meaningful.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)
if RETENTION_DAYS < 7:
    raise ImproperlyConfigured("RETENTION_DAYS must be at least 7.")

# --- The tutors' own calendars (calendars/) ---------------------------------------------
# Each source is synced this often (failing ones back off, up to 6 hours between tries).
CALENDAR_SYNC_MINUTES = env.int("CALENDAR_SYNC_MINUTES", default=10)
# A calendar larger than this (decompressed) is refused.
CALENDAR_MAX_BYTES = env.int("CALENDAR_MAX_BYTES", default=5 * 1024 * 1024)
# The whole fetch of one calendar (redirects and body included).
CALENDAR_FETCH_TIMEOUT_SECONDS = env.float("CALENDAR_FETCH_TIMEOUT_SECONDS", default=15.0)
# Fernet keys (comma-separated, newest first) that encrypt calendar addresses and
# passwords at rest. Required in production; empty elsewhere: derived from SECRET_KEY.
CALENDAR_CREDENTIALS_KEY = env.str("CALENDAR_CREDENTIALS_KEY", default="")
CALENDAR_CREDENTIALS_KEY_REQUIRED = False  # production.py: True, no derived key
# Fetch from private, loopback and link-local addresses. Off: the fetcher refuses them
# (SSRF). Only tests, or a CalDAV server on your own network, turn it on.
CALENDAR_ALLOW_PRIVATE_ADDRESSES = env.bool("CALENDAR_ALLOW_PRIVATE_ADDRESSES", default=False)
# A source failing this many days in a row stops syncing, and its tutor gets an email.
CALENDAR_GIVE_UP_DAYS = env.int("CALENDAR_GIVE_UP_DAYS", default=7)

# --- Booking rules --------------------------------------------------------------------
BOOKING_HOLD_MINUTES = env.int("BOOKING_HOLD_MINUTES", default=30)
BOOKING_MAX_HOLDS_PER_EMAIL = env.int("BOOKING_MAX_HOLDS_PER_EMAIL", default=2)
# Unpaid holds at once from one network address (a household or school may share one).
BOOKING_MAX_HOLDS_PER_CLIENT = env.int("BOOKING_MAX_HOLDS_PER_CLIENT", default=4)
# At most this share of a tutor's upcoming slots may be held unpaid at once, by everyone
# together (but always at least BOOKING_MIN_HELD_PER_TUTOR holds).
BOOKING_MAX_HELD_SHARE = env.float("BOOKING_MAX_HELD_SHARE", default=0.25)
BOOKING_MIN_HELD_PER_TUTOR = env.int("BOOKING_MIN_HELD_PER_TUTOR", default=4)
SLOT_HORIZON_WEEKS = env.int("SLOT_HORIZON_WEEKS", default=8)
# Requested times (bookings/time_requests.py): how long an accepted time's private link
# can hold it, and how many unanswered requests one email or network address may have.
REQUEST_OFFER_HOURS = env.int("REQUEST_OFFER_HOURS", default=48)
REQUEST_MAX_PENDING_PER_EMAIL = env.int("REQUEST_MAX_PENDING_PER_EMAIL", default=3)
REQUEST_MAX_PENDING_PER_CLIENT = env.int("REQUEST_MAX_PENDING_PER_CLIENT", default=6)
SLOT_QUERY_MAX_DAYS = 62
# Reminder emails, in minutes before the start (default: a day and an hour).
BOOKING_REMINDER_OFFSETS_MINUTES: list[int] = env.list(
    "BOOKING_REMINDER_OFFSETS_MINUTES", cast=int, default=[24 * 60, 60]
)
# --- Stripe ---------------------------------------------------------------------------
# Without a secret key (and only with DEBUG on) checkout is simulated by a local page.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Optional: another API base for the official client (stripe-mock, a local fake).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# The local stand-in for Stripe Checkout; only ever on in development and tests.
PAYMENTS_SIMULATED = False
# The payment provider behind the booking flows (see bookings/payment_port.py).
# packages' port is payments' own plus prepaid credits (see packages/port.py).
BOOKINGS_PAYMENT_PORT = "packages.port.PaymentsPort"
# Who grants what a purchase's payment bought (see payments/purchase_port.py).
PAYMENTS_PURCHASE_PORT = "packages.port.PurchasesPort"
# The "hold expired" email waits this long: a student still paying may yet be confirmed.
BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES = env.int(
    "BOOKING_HOLD_EXPIRED_EMAIL_DELAY_MINUTES", default=10
)
