import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")

app = Celery("robodash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue(task_name: str, *args: object) -> None:
    """Hand the task registered as `task_name` (e.g. "calls.tasks.sweep_due_work") to a worker.

    By name, so a module that asks for work need not import the tasks module, which imports it
    back (tests/test_layout.py checks every name given here is a task)."""
    app.send_task(task_name, args=args)


@setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    """Log through Django's LOGGING, so the worker's lines pass the secret-redacting filter."""
    import logging.config

    from django.conf import settings

    config: dict[str, Any] = dict(settings.LOGGING)
    loglevel = kwargs.get("loglevel")
    if isinstance(loglevel, str | int) and loglevel:
        config["root"] = {**config["root"], "level": loglevel}
    logging.config.dictConfig(config)


@task_prerun.connect
@task_postrun.connect
def close_old_connections_around_task(sender: Any = None, **kwargs: object) -> None:
    """Around every task, what Django does around every request: close a connection older than
    CONN_MAX_AGE or left unusable (PostgreSQL restarted, an error mid-transaction), and check a
    kept one before its first query when CONN_HEALTH_CHECKS is on. Celery's own closing is held
    off by CELERY_DB_REUSE_MAX (settings), so a worker keeps its connection from task to task."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run inside the caller's transaction: its connection is not the task's to close
    from django.db import close_old_connections

    close_old_connections()


BALANCE_SECONDS = 60  # calls.pipeline.balances.BALANCE_REFRESH_SECONDS
UPLOADS_SECONDS = 60  # under calls.intake.uploads.STALLED_AFTER


@app.on_after_finalize.connect
def schedule_periodic_work(sender: Celery, **kwargs: object) -> None:
    from django.conf import settings

    every = settings.ROBODASH_SWEEP_SECONDS
    # A sweep that waited longer than a few periods in the queue is stale: the next one is due.
    sender.add_periodic_task(
        every,
        sender.signature("calls.tasks.sweep_due_work"),
        name="sweep due work",
        expires=max(every * 3, 5),
    )
    # The outbox: decisions due to be written back to the shops (shops/outbox.py).
    sender.add_periodic_task(
        every,
        sender.signature("shops.tasks.sweep_write_backs"),
        name="sweep due write-backs",
        expires=max(every * 3, 5),
    )
    # The inbox: the shops' deliveries waiting for a worker (shops/inbox.py), each also woken
    # for as it is stored; the sweep takes in any whose wake was lost.
    sender.add_periodic_task(
        every,
        sender.signature("shops.tasks.take_in_webhooks"),
        name="take in waiting webhooks",
        expires=max(every * 3, 5),
    )
    # The pages show the stored balances; this keeps them a minute old at most.
    sender.add_periodic_task(
        BALANCE_SECONDS,
        sender.signature("calls.tasks.refresh_balances"),
        name="refresh provider balances",
        expires=BALANCE_SECONDS,
    )
    # A launch whose worker was lost resumes within minutes; abandoned previews go.
    sender.add_periodic_task(
        UPLOADS_SECONDS,
        sender.signature("calls.tasks.look_after_uploads"),
        name="look after uploads",
        expires=UPLOADS_SECONDS,
    )
    # A bulk action on orders whose worker was lost resumes within minutes.
    sender.add_periodic_task(
        UPLOADS_SECONDS,
        sender.signature("calls.tasks.look_after_order_batches"),
        name="look after order batches",
        expires=UPLOADS_SECONDS,
    )
