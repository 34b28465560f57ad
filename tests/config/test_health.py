from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

pytestmark = pytest.mark.django_db


def test_healthz_answers_from_one_cheap_database_check(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "task_queue" not in response.json()


def test_readyz_reports_database_and_queue_as_json(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["task_queue"] == {
        "ok": True, "queued": 0, "oldest_queued_seconds": 0, "clusters": 0,
    }


def test_readyz_is_degraded_when_a_task_waits_unclaimed_for_minutes(client):
    OrmQ.objects.create(key="backstop", payload="x", lock=timezone.now() - timedelta(minutes=10))

    body = client.get("/readyz").json()

    assert body["status"] == "degraded"
    assert body["task_queue"]["ok"] is False
    assert body["task_queue"]["oldest_queued_seconds"] >= 600


def test_readyz_ignores_a_task_a_worker_is_holding(client):
    OrmQ.objects.create(key="backstop", payload="x", lock=timezone.now() + timedelta(seconds=60))

    body = client.get("/readyz").json()

    assert body["task_queue"]["ok"] is True
    assert body["task_queue"]["queued"] == 1
