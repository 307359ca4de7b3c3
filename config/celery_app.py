import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("tutoring")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """The web request that queues a task hands its request id to it."""
    from config.observability import request_id_var

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get()


@task_prerun.connect
def _adopt_request_id(task: Any = None, **_: Any) -> None:
    from config.observability import request_id_var

    if task is None:
        return
    # A worker exposes message headers as request attributes; eager calls keep them in
    # request.headers.
    rid = getattr(task.request, "request_id", None) or (
        getattr(task.request, "headers", None) or {}
    ).get("request_id")
    task.request.request_id_token = request_id_var.set(rid or f"task-{task.request.id}")


@task_postrun.connect
def _drop_request_id(task: Any = None, **_: Any) -> None:
    from config.observability import request_id_var

    token = getattr(task.request, "request_id_token", None) if task is not None else None
    if token is not None:
        request_id_var.reset(token)
