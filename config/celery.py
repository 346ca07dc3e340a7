"""The Celery app: Redis broker, at-least-once delivery of tasks.

The send pipeline is built for at-least-once task delivery and makes it safe with its
ledger (one Delivery row per issue and reader), so the settings below choose
redelivery over loss:

- task_acks_late: a task is acknowledged when it finishes, not when it starts, so a
  worker killed mid-batch leaves its task on the broker for another worker.
- task_reject_on_worker_lost: if the worker process dies (kill -9, OOM), the task is
  requeued at once instead of being acknowledged as failed.
- worker_prefetch_multiplier=1: a worker holds one task beyond those it runs, so a
  crash strands as little as possible and batches spread evenly across workers.
- visibility_timeout: Redis has no real acknowledgements; an unacknowledged task is
  handed to another worker after this many seconds. It must be longer than the longest
  batch and every retry countdown (each is a hop of at most half of it, see
  newsletter.sending.retry), or a slow but healthy batch would be run twice. Nothing
  waits for it to recover lost work: batch leases (60 s, renewed while a batch works)
  and beat's send watchdog (dispatch records, every 30 s) notice a dead worker or a
  lost task within about a minute (newsletter.sending.dispatch).
"""

from __future__ import annotations

import os
import threading

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("belt_and_road_weekly")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Outcomes live in the Delivery ledger, not in a result backend.
    task_ignore_result=True,
    # Celery's Django fix-up closes the database connection after every task unless
    # this is set, so each batch would pay for a new PostgreSQL backend. Reuse it;
    # Django's CONN_MAX_AGE still retires it (close_old_connections in the task).
    CELERY_DB_REUSE_MAX=1000,
    broker_connection_retry_on_startup=True,
)
# visibility_timeout (CELERY_BROKER_TRANSPORT_OPTIONS) and the beat schedule come from
# settings, where CELERY_VISIBILITY_TIMEOUT is checked against the batch lease.
app.autodiscover_tasks()


def enqueue(task: str, /, *args, **kwargs) -> None:
    """Send the task named `task` ("newsletter.tasks.send_reader_email") once the transaction commits.

    Services enqueue through this and never import a tasks module, so the one
    direction holds: tasks import services, services name tasks. Eager (embedded)
    runs honour task_always_eager as a direct `.delay()` would.
    """
    transaction.on_commit(lambda: _send(task, args, kwargs))


_discovering = threading.Lock()


def _send(task: str, args: tuple, kwargs: dict) -> None:
    if task not in app.tasks:
        # A web process imports no tasks module by itself; autodiscovery does, once.
        # One thread at a time: Celery marks the modules imported before it has
        # imported them, so a second thread of a fresh gunicorn process found the task
        # missing (NotRegistered, a 500 for the first sign-ups of a surge).
        with _discovering:
            app.loader.import_default_modules()
    app.tasks[task].apply_async(args, kwargs)
