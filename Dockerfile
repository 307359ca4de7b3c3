# The production image. One image, every role (docker-compose.yml): gunicorn serves the
# web app (the default command), and the same image runs the Celery worker, beat and
# the one-off migrate service.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv from the hashed runtime lock ------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Every file is checked against its hash in the lock. Only wheels: every pinned package
# has one for linux (amd64 and arm64) and CPython 3.11, so nothing is built from source
# and no compiler is needed: a package that lost its wheel fails the build instead of
# pulling one in.
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock

# --- runtime: the venv and the code, run as an unprivileged user ---------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    GUNICORN_BIND=0.0.0.0:8000
RUN groupadd --gid 1000 app && useradd --uid 1000 --gid app --create-home app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The code belongs to root and is read-only for the app (hence compiled here); only var/
# (beat's schedule) is the app's to write. .dockerignore keeps secrets, local state and
# tests out.
COPY . .
# collectstatic needs the production settings to import; these throwaway values never
# reach runtime (tests/test_deploy.py runs collectstatic with exactly these).
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 CELERY_BROKER_URL=memory:// \
    EMAIL_URL=smtp://localhost:25 STRIPE_SECRET_KEY=unset STRIPE_WEBHOOK_SECRET=unset \
    CALENDAR_CREDENTIALS_KEY=unset \
    python manage.py collectstatic --noinput --verbosity 0 \
 && rm -f /tmp/build.sqlite3 \
 && python -m compileall -q . \
 && mkdir var && chown app:app var
# app, by number: a runtime that must run as non-root can tell without /etc/passwd.
USER 1000:1000

# The web role's check; docker-compose.yml gives the worker and beat their own.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "web"]

# config/gunicorn.conf.py: workers, threads, timeouts and logging (no access log with
# URLs in it: the app writes its own, redacted). WEB_CONCURRENCY and GUNICORN_THREADS size it.
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
