"""Settings of the stack bench/load.py and bench/faults.py start: production-like local.

config.settings.local driven by environment variables (DJANGO_DEBUG=False, a secret key,
PostgreSQL, Redis, SMTP, Stripe pointed at the fake), plus the two floor views of
bench/floor_urls.py, so the floors are served by the very same gunicorn workers,
middleware and database connections as the endpoints they bound.
"""

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
