"""Liveness for load balancers, and the infrastructure half of readiness: the database, the task
queue, the task worker's heartbeat, and who may read the details.

Readiness as a whole (/readyz) also asks about the sweep and the outbox, which belong to the apps;
its view is support/monitoring.py, which calls the checks here (config imports no app).
"""

import hmac
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django_q.models import OrmQ
from django_q.status import Stat

from config.heartbeat import task_worker_last_seen

# Queued tasks older than this mean no worker is consuming them.
QUEUE_STALE_AFTER_SECONDS = 300


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message is for operators
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def task_queue_figures(*, now=None) -> dict:
    """How many tasks are queued and how long the oldest unclaimed one has waited."""
    now = now or timezone.now()
    # The ORM broker stamps `lock` with the enqueue time and moves it into the future while a
    # worker holds the task, so the oldest past `lock` is the longest a task has waited unclaimed.
    oldest = OrmQ.objects.filter(lock__lte=now).order_by("lock").values_list("lock", flat=True).first()
    return {"queued": OrmQ.objects.count(), "oldest_queued_seconds": round((now - oldest).total_seconds()) if oldest
            else 0}


def check_task_queue(*, now=None) -> dict:
    figures = task_queue_figures(now=now)
    return {
        "ok": figures["oldest_queued_seconds"] < QUEUE_STALE_AFTER_SECONDS,
        **figures,
        # Clusters alive this very moment (each saves its status every half second, for 3 s).
        "clusters": len(Stat.get_all()),
    }


def check_task_worker(*, now=None) -> dict:
    """Has a task worker been alive within TASK_WORKER_STALE_AFTER (config/heartbeat.py)? Not a
    question about queued tasks: with the cluster down, the scheduler inside it queues nothing."""
    now = now or timezone.now()
    last_seen = task_worker_last_seen()
    seconds = round((now - last_seen).total_seconds()) if last_seen else None
    return {
        "ok": seconds is not None and seconds <= settings.TASK_WORKER_STALE_AFTER.total_seconds(),
        "last_seen_seconds_ago": seconds,
        "stale_after_seconds": round(settings.TASK_WORKER_STALE_AFTER.total_seconds()),
    }


def holds_the_token(request) -> bool:
    """Does the request carry METRICS_TOKEN as a Bearer token? Never, when no token is configured."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def readiness_response(request, checks: dict) -> JsonResponse:
    """200 only when every check is ok; 503 otherwise ("degraded" is not ready). Anonymous callers
    get the status alone; the details (what failed, by how much) only with the token."""
    ok = all(check["ok"] for check in checks.values())
    status = "ok" if ok else ("degraded" if checks.get("database", {}).get("ok") else "down")
    body = {"status": status, **checks} if holds_the_token(request) else {"status": status}
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
def healthz(request):
    """Liveness, for load balancers that ask every few seconds: the database answers. Cheap on
    purpose (one `SELECT 1`); what costs more is in /readyz."""
    database = check_database()
    return JsonResponse({"status": "ok" if database["ok"] else "down", "database": database},
                        status=200 if database["ok"] else 503)
