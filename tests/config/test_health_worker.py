"""/readyz against a real task worker: started, seen alive, killed, and reported down.

Observed (issue 22): with the task cluster killed for 70 s, /readyz still answered 200 "ok".
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from billing.models import ReconcileRun
from config.heartbeat import HEARTBEAT_KEY

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER = timedelta(seconds=3)  # TASK_WORKER_STALE_AFTER, shortened from 90 s for the test


def readyz_until(client, status_code, *, within: float):
    deadline = time.monotonic() + within
    while True:
        response = client.get("/readyz")
        if response.status_code == status_code or time.monotonic() > deadline:
            return response
        time.sleep(0.2)  # polling interval, not a wait for time to pass: the loop ends on the answer


@pytest.fixture
def task_worker(transactional_db):
    """`manage.py qcluster` on the test database, as a process group this test can kill."""
    db = connection.settings_dict
    # config.settings on the test environment (tests.settings put it in os.environ): tests.settings runs
    # tasks inline, and a cluster started with that shares its database connection with its children.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "Q_WORKERS": "1",
           "TASK_WORKER_STALE_AFTER": f"{STALE_AFTER.total_seconds():.0f}s",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT']}/{db['NAME']}"}
    process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    cache.delete(HEARTBEAT_KEY)  # the cache table is not flushed between tests


def test_readyz_turns_503_once_a_killed_task_worker_has_been_silent_past_the_limit(client, settings, task_worker):
    settings.TASK_WORKER_STALE_AFTER = STALE_AFTER
    now = timezone.now()
    ReconcileRun.objects.create(started_at=now, finished_at=now, status=ReconcileRun.Status.OK)
    cache.delete(HEARTBEAT_KEY)
    assert readyz_until(client, 200, within=60).status_code == 200  # the worker's heartbeat arrived

    os.killpg(task_worker.pid, signal.SIGKILL)  # the whole cluster, scheduler included, at once
    task_worker.wait(timeout=10)
    killed_at = time.monotonic()
    response = readyz_until(client, 503, within=30)

    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    assert time.monotonic() - killed_at >= STALE_AFTER.total_seconds() - 1  # not before the limit
