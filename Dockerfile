# The production image: gunicorn serves the web app; the same image runs the Celery
# worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY . .
# collectstatic needs settings to import; these throwaway values never reach runtime.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 CELERY_BROKER_URL=memory:// \
    EMAIL_URL=smtp://localhost:25 STRIPE_SECRET_KEY=unset STRIPE_WEBHOOK_SECRET=unset \
    python manage.py collectstatic --noinput --verbosity 0 \
 && useradd --create-home --uid 1000 app
USER app

# config/gunicorn.conf.py: workers, threads, timeouts and logging (no access log with
# URLs in it: the app writes its own, redacted). WEB_CONCURRENCY and GUNICORN_THREADS size it.
ENV GUNICORN_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
