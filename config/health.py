"""Liveness and readiness for load balancers and humans: is the database up, is the queue moving."""

import time

from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django_q.models import OrmQ
from django_q.status import Stat

# Queued tasks older than this mean no worker is consuming them.
QUEUE_STALE_AFTER_SECONDS = 300


def _check_database():
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message is for operators
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_task_queue():
    now = timezone.now()
    # The ORM broker stamps `lock` with the enqueue time and moves it into the future while a
    # worker holds the task, so the oldest past `lock` is the longest a task has waited unclaimed.
    waiting = OrmQ.objects.filter(lock__lte=now)
    oldest = waiting.order_by("lock").values_list("lock", flat=True).first()
    queued = OrmQ.objects.count()
    oldest_age = (now - oldest).total_seconds() if oldest else 0
    return {
        "ok": oldest_age < QUEUE_STALE_AFTER_SECONDS,
        "queued": queued,
        "oldest_queued_seconds": round(oldest_age),
        # Each running qcluster refreshes its status in the shared cache twice a second.
        "clusters": len(Stat.get_all()),
    }


@never_cache
def healthz(request):
    """Liveness, for load balancers that ask every few seconds: the database answers. Cheap on
    purpose (one `SELECT 1`); what costs more is in /readyz."""
    database = _check_database()
    return JsonResponse({"status": "ok" if database["ok"] else "down", "database": database},
                        status=200 if database["ok"] else 503)


@never_cache
def readyz(request):
    """Readiness, for humans and monitors: the database, and whether the task queue is moving."""
    database = _check_database()
    body = {"database": database}
    if database["ok"]:
        body["task_queue"] = _check_task_queue()
    healthy = database["ok"] and body["task_queue"]["ok"]
    body["status"] = "ok" if healthy else ("degraded" if database["ok"] else "down")
    return JsonResponse(body, status=200 if database["ok"] else 503)
