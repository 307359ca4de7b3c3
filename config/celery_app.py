"""The Celery app: configured from Django's settings (CELERY_*), tasks found in each app.

Dependencies point one way: this module imports none of ours. Everything that needs
the app imports it (config/__init__.py, the health check in config.observability), and
the request id that follows a request into the tasks it queues is django-guid's
Celery integration, switched on in settings.DJANGO_GUID rather than wired here.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("tutoring")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
