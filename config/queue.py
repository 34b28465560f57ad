"""Background work is queued only after the transaction that decided it has committed."""

import logging

from django.db import transaction
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def enqueue_after_commit(func: str, *args, task_name: str):
    """Queue a django-q2 task once the current transaction commits.

    If the queue cannot take it, the caller is never failed: what the task would do is already
    recorded in committed rows, and another pass picks it up (the outbox dispatcher every minute
    for emails; the customer's status page for a settle).
    """

    def enqueue():
        try:
            async_task(func, *args, task_name=task_name)
        except Exception:
            logger.exception("Could not enqueue %s; it will be caught up later", task_name)

    transaction.on_commit(enqueue)
