"""/metrics: the figures a monitor needs, in Prometheus's text format, to METRICS_TOKEN's holder only."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_q.models import OrmQ
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import AccessDelivery
from billing.models import OrderState, ReconcileRun
from config.heartbeat import HEARTBEAT_KEY
from outbox.models import OutboundEmail
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def held(minutes_ago, *, cents, currency="usd"):
    return OrderFactory(state=OrderState.NEEDS_REVIEW, held_since=timezone.now() - timedelta(minutes=minutes_ago),
                        amount_received_cents=cents, received_currency=currency)


def test_metrics_do_not_exist_without_a_metrics_token(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404


def test_metrics_ask_for_the_bearer_token(client):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_metrics_refuse_a_wrong_token(client):
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_metrics_count_money_held_and_how_long_the_oldest_has_waited(client):
    held(90, cents=1500)
    held(10, cents=2500)
    held(5, cents=900, currency="eur")
    OrderFactory(state=OrderState.ACTIVE, paid_at=timezone.now())

    figures = scrape(client)

    assert figures[("backstop_money_held_orders", ())] == 3
    assert figures[("backstop_money_held_cents", (("currency", "usd"),))] == 4000
    assert figures[("backstop_money_held_cents", (("currency", "eur"),))] == 900
    assert 90 * 60 <= figures[("backstop_money_held_oldest_seconds", ())] < 91 * 60


def test_metrics_count_orders_by_state_naming_every_state(client):
    OrderFactory(state=OrderState.ACTIVE, paid_at=timezone.now())
    OrderFactory(state=OrderState.ACTIVE, paid_at=timezone.now())
    OrderFactory(state=OrderState.FAILED)

    figures = scrape(client)

    assert figures[("backstop_orders", (("state", "active"),))] == 2
    assert figures[("backstop_orders", (("state", "failed"),))] == 1
    assert figures[("backstop_orders", (("state", "disputed"),))] == 0


def test_metrics_give_the_oldest_unsent_email(client):
    email = OutboundEmail.objects.create(about=OrderFactory(), kind="confirmation",
                                         recipient="ana@example.com", next_attempt_at=timezone.now())
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=7))

    figures = scrape(client)

    assert figures[("backstop_emails_unsent", ())] == 1
    assert 420 <= figures[("backstop_email_unsent_oldest_seconds", ())] < 480


def test_metrics_give_the_sweeps_last_success(client):
    finished = timezone.now() - timedelta(minutes=2)
    ReconcileRun.objects.create(started_at=finished, finished_at=finished, status=ReconcileRun.Status.OK)

    figures = scrape(client)

    assert figures[("backstop_sweep_last_success_timestamp_seconds", ())] == pytest.approx(finished.timestamp())
    assert figures[("backstop_sweep_healthy", ())] == 1


def test_metrics_give_the_webhook_and_task_backlogs(client):
    AccessDelivery.objects.create(event_id="evt-1", event_type="access.granted", user=UserFactory(),
                                  email="ana@example.com", payload={})
    OrmQ.objects.create(key="backstop", payload="x", lock=timezone.now() - timedelta(minutes=3))
    seen = timezone.now() - timedelta(seconds=5)
    cache.set(HEARTBEAT_KEY, seen, None)

    figures = scrape(client)

    assert figures[("backstop_access_webhooks_pending", ())] == 1
    assert figures[("backstop_tasks_queued", ())] == 1
    assert figures[("backstop_task_oldest_queued_seconds", ())] >= 180
    assert figures[("backstop_task_worker_last_seen_timestamp_seconds", ())] == pytest.approx(seen.timestamp())


def test_metrics_are_a_handful_of_aggregate_queries(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):
        scrape(client)
