"""/healthz (liveness) and /readyz (readiness that tells the truth: issue 22).

Observed: with the task cluster killed for 70 s, /readyz answered 200 "ok" with `clusters: 0` (the
scheduler dies with the cluster, so no queued task ever went stale), and "degraded" was a 200 too.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_q.models import OrmQ

from billing.models import ReconcileRun
from config.heartbeat import HEARTBEAT_KEY
from outbox.models import OutboundEmail
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def worker_seen(seconds_ago=1):
    cache.set(HEARTBEAT_KEY, timezone.now() - timedelta(seconds=seconds_ago), None)


def sweep_passed(minutes_ago=1):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    ReconcileRun.objects.create(started_at=at, finished_at=at, status=ReconcileRun.Status.OK)


@pytest.fixture
def all_well():
    worker_seen()
    sweep_passed()


def as_monitor(client):
    return client.get("/readyz", headers={"Authorization": f"Bearer {TOKEN}"})


def email_owed(minutes_ago):
    email = OutboundEmail.objects.create(about=OrderFactory(), kind="confirmation",
                                         recipient="ana@example.com", next_attempt_at=timezone.now())
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return email


def test_healthz_answers_from_one_cheap_database_check(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "task_queue" not in response.json()


def test_readyz_is_ok_when_a_worker_is_alive_the_sweep_passes_and_no_email_waits(client, all_well):
    response = as_monitor(client)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["task_worker"]["ok"] is True
    assert body["task_queue"] == {"ok": True, "queued": 0, "oldest_queued_seconds": 0, "clusters": 0}
    assert body["sweep"]["ok"] is True
    assert body["outbox"]["ok"] is True


def test_readyz_is_503_when_no_task_worker_was_ever_seen(client):
    sweep_passed()
    cache.delete(HEARTBEAT_KEY)

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["task_worker"] == {"ok": False, "last_seen_seconds_ago": None, "stale_after_seconds": 90}


def test_readyz_is_503_once_no_task_worker_has_been_alive_for_ninety_seconds(client):
    sweep_passed()
    worker_seen(seconds_ago=91)

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["task_worker"]["last_seen_seconds_ago"] >= 91


def test_readyz_stays_ok_through_a_worker_restart_of_a_few_seconds(client):
    sweep_passed()
    worker_seen(seconds_ago=60)

    assert as_monitor(client).status_code == 200


def test_readyz_degraded_is_503_when_a_task_waits_unclaimed_for_minutes(client, all_well):
    OrmQ.objects.create(key="backstop", payload="x", lock=timezone.now() - timedelta(minutes=10))

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["task_queue"]["ok"] is False
    assert response.json()["task_queue"]["oldest_queued_seconds"] >= 600


def test_readyz_ignores_a_task_a_worker_is_holding(client, all_well):
    OrmQ.objects.create(key="backstop", payload="x", lock=timezone.now() + timedelta(seconds=60))

    body = as_monitor(client).json()

    assert body["task_queue"]["ok"] is True
    assert body["task_queue"]["queued"] == 1


def test_readyz_is_503_when_the_sweep_has_failed_twice_in_a_row(client, all_well):
    now = timezone.now()
    for seconds in (30, 10):
        ReconcileRun.objects.create(started_at=now - timedelta(seconds=seconds), finished_at=now,
                                    status=ReconcileRun.Status.FAILED, errors=["sync: Stripe did not answer"])

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["sweep"]["ok"] is False
    assert response.json()["sweep"]["failures_in_a_row"] == 2


def test_readyz_is_503_when_the_sweep_has_not_finished_a_pass_for_minutes(client):
    worker_seen()
    sweep_passed(minutes_ago=10)

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["sweep"]["stalled"] is True


def test_readyz_is_503_when_the_oldest_unsent_email_is_older_than_outbox_alert_after(client, all_well):
    email_owed(minutes_ago=6)

    response = as_monitor(client)

    assert response.status_code == 503
    assert response.json()["outbox"]["ok"] is False
    assert response.json()["outbox"]["unsent"] == 1
    assert response.json()["outbox"]["oldest_unsent_seconds"] >= 360


def test_readyz_is_ok_while_the_oldest_unsent_email_is_younger_than_outbox_alert_after(client, all_well):
    email_owed(minutes_ago=4)

    assert as_monitor(client).status_code == 200


def test_outbox_alert_after_is_a_setting(client, all_well, settings):
    settings.OUTBOX_ALERT_AFTER = timedelta(minutes=2)
    email_owed(minutes_ago=3)

    assert as_monitor(client).status_code == 503


def test_an_email_that_was_sent_is_no_backlog_however_old(client, all_well):
    email = email_owed(minutes_ago=60)
    OutboundEmail.objects.filter(pk=email.pk).update(status=OutboundEmail.Status.SENT, sent_at=timezone.now())

    assert as_monitor(client).status_code == 200


def test_an_anonymous_caller_gets_only_the_status(client, all_well):
    email_owed(minutes_ago=6)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}


def test_a_wrong_token_gets_only_the_status(client, all_well):
    response = client.get("/readyz", headers={"Authorization": "Bearer not-the-token"})

    assert response.json() == {"status": "ok"}


def test_without_a_metrics_token_configured_nobody_gets_the_details(client, all_well, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/readyz", headers={"Authorization": "Bearer "})

    assert response.json() == {"status": "ok"}


def test_the_token_holder_gets_what_failed_and_by_how_much(client):
    response = as_monitor(client)

    assert set(response.json()) == {"status", "database", "task_worker", "task_queue", "sweep", "outbox"}
