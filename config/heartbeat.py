"""The task worker's heartbeat: when a django-q2 cluster was last seen alive, kept where every process
can read it (the shared database cache), for as long as anyone asks.

django-q2's sentinel saves its status (a Stat) to the shared cache every half second from its guard
loop, whether or not any task is queued, but with a three-second expiry: it tells "a cluster is alive
now", never "when was one last alive". Readiness used to count those Stats and look at how long queued
tasks had waited; with the cluster killed, the scheduler (which runs inside the cluster) stopped
queueing anything, so nothing ever waited and /readyz answered "ok" with no cluster at all.

So the broker the cluster uses (Q_CLUSTER["broker_class"]) also stamps one key with the time whenever
the sentinel saves its Stat, at most every HEARTBEAT_EVERY seconds: it does not depend on the scheduler
or on tasks, and it outlives the cluster, so a reader can say how long ago a worker was last alive
(docs/operations.md). One key for all clusters: any one alive keeps it fresh.
"""

import logging
import time
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.utils import timezone
from django_q.brokers.orm import ORM

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "backstop:task-worker:alive-at"


def heartbeat_every() -> float:
    # Ten seconds, or a ninth of the window when a test shortens it: always several beats per window.
    return min(10.0, settings.TASK_WORKER_STALE_AFTER.total_seconds() / 9)


def task_worker_last_seen() -> datetime | None:
    """When a task cluster last said it was alive; None if none ever did (or the cache was cleared)."""
    return cache.get(HEARTBEAT_KEY)


class HeartbeatORM(ORM):
    """django-q2's ORM broker, plus the heartbeat above whenever the cluster saves its status, and
    a finished task's row deleted in one statement."""

    _last_beat = float("-inf")  # monotonic time of this process's last write (the sentinel is one process)

    def set_stat(self, key: str, value: str, timeout: int):
        result = super().set_stat(key, value, timeout)
        now = time.monotonic()
        if now - self._last_beat >= heartbeat_every():
            try:
                # No expiry: the key is the memory of the last beat, and the cache never culls it.
                cache.set(HEARTBEAT_KEY, timezone.now(), None)
                type(self)._last_beat = now
            except Exception:  # a heartbeat must never stop the cluster; the next beat tries again
                logger.warning("Could not record the task worker's heartbeat", exc_info=True)
        return result

    def delete(self, task_id):
        """Delete a finished (or failed) task's row: one `DELETE`. django-q2 deletes it with
        `QuerySet.delete()`, whose collector runs even a one-row delete in a transaction of its own
        (`BEGIN`, `DELETE`, `COMMIT`): two statements more for every task. The queue's row has no
        relations and no signals, so there is nothing for a collector to do."""
        queue = self.get_connection()  # django-q2's own way: it drops a connection past its age first
        table, pk = queue.model._meta.db_table, queue.model._meta.pk.column
        with connections[queue.db].cursor() as cursor:
            cursor.execute(f"DELETE FROM {cursor.db.ops.quote_name(table)} "  # noqa: S608 (the model's own names)
                           f"WHERE {cursor.db.ops.quote_name(pk)} = %s", [task_id])
