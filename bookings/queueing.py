"""The outbox's Celery task, known by its name only.

Dependencies point one way: bookings.tasks (thin: load by id, call a service) imports
bookings.services and bookings.notifications, so neither imports bookings.tasks back,
not even inside a function. A producer needs nothing of a task but its name and its
arguments: notifications queues "bookings.tasks.deliver_notification" through the
object below, and Celery's registry finds the task that carries that name.
"""

from typing import cast

from celery import Task, current_app
from celery.local import Proxy


def registered(name: str) -> Task:
    """The task called `name` in the current Celery app.

    A web process registers an app's tasks only when something imports its tasks
    module; when the name is not known yet, import every installed app's tasks module,
    as a worker does when it starts.
    """
    if name not in current_app.tasks:
        current_app.autodiscover_tasks(force=True)
    return current_app.tasks[name]


# Resolved at each use, like the object @shared_task returns: .delay(), .apply_async().
deliver_notification = cast(
    "Task[[int], str]", Proxy(lambda: registered("bookings.tasks.deliver_notification"))
)
