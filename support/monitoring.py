"""What a monitor asks: /readyz (is this installation doing its job?) and /metrics (the figures
behind it, in Prometheus's text format). Both read the same selectors; neither writes.

Here rather than in config/ because the answers are about the apps (the sweep's runs, the outbox,
orders and held money) and config imports no app; support sits above everything it reads.
docs/operations.md says what each check and figure means and what to do about it.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from accounts.webhooks import access_deliveries_backlog
from billing.selectors import emails_unsent, money_held, orders_by_state, sweep_health
from config import health
from config.heartbeat import task_worker_last_seen
from outbox.models import OutboundEmail


def _seconds_since(moment, now) -> int:
    return round((now - moment).total_seconds()) if moment else 0


def check_sweep(*, now=None) -> dict:
    sweep = sweep_health(now=now)
    return {"ok": sweep.healthy, "failures_in_a_row": sweep.failures, "stalled": sweep.stalled,
            "last_ok_at": sweep.last_ok_at.isoformat() if sweep.last_ok_at else None,
            "last_error": sweep.last_error}


def check_outbox(*, now=None) -> dict:
    """Unhealthy once the oldest email still waiting to go out was owed more than OUTBOX_ALERT_AFTER
    ago: the email provider (or the worker) is not taking them."""
    now = now or timezone.now()
    unsent = emails_unsent()
    oldest = _seconds_since(unsent["oldest_at"], now)
    return {"ok": oldest <= settings.OUTBOX_ALERT_AFTER.total_seconds(), "unsent": unsent["count"],
            "oldest_unsent_seconds": oldest, "alert_after_seconds": round(settings.OUTBOX_ALERT_AFTER.total_seconds())}


# Sends in a row one email may fail before the provider counts as down: with the outbox's first retries
# (10 s, 30 s, a minute apart, tried by the dispatcher each minute) that is two to three minutes in,
# inside OUTBOX_ALERT_AFTER; one failure is often a blip the next try gets through.
EMAIL_DOWN_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class EmailOutage:
    key: str  # one alert per outage: named after the oldest email it held up
    title: str
    detail: str
    unsent: int
    oldest_at: datetime
    last_error: str


def email_outage(*, now=None) -> EmailOutage | None:
    """Customers' emails are not going out: one waiting has failed EMAIL_DOWN_AFTER_ATTEMPTS sends in a
    row (the provider refuses or does not answer), or the oldest has waited past OUTBOX_ALERT_AFTER
    (/readyz's check: nothing sends them). None while email goes out. For the team's alert and the
    console's landing page."""
    now = now or timezone.now()
    unsent = OutboundEmail.objects.filter(status__in=OutboundEmail.STILL_TRYING)
    oldest = unsent.order_by("created_at").values("id", "created_at").first()
    if oldest is None:
        return None
    failing = (unsent.filter(attempts__gte=EMAIL_DOWN_AFTER_ATTEMPTS).exclude(last_error="")
               .order_by("-next_attempt_at").values_list("last_error", flat=True).first())
    waited_too_long = now - oldest["created_at"] > settings.OUTBOX_ALERT_AFTER
    if failing is None and not waited_too_long:
        return None
    count = unsent.count()
    title = (f"{count} customer email{'s' if count != 1 else ''} waiting, "
             f"the oldest for {timesince(oldest['created_at'], now)}")
    if failing is not None:
        detail = f"The email provider's last answer: {failing.rstrip('.')}."
    else:
        detail = ("The provider has not refused them: the task worker that sends them (manage.py qcluster) "
                  "may not be running.")
    return EmailOutage(key=f"email-down:{oldest['id']}", title=title, detail=detail, unsent=count,
                       oldest_at=oldest["created_at"], last_error=failing or "")


@never_cache
def readyz(request):
    """Readiness, for monitors and humans: 200 only when the database answers, a task worker was
    alive within TASK_WORKER_STALE_AFTER, queued tasks are being taken, the sweep is healthy and no
    email has waited past OUTBOX_ALERT_AFTER; 503 otherwise. Details only to METRICS_TOKEN's holder."""
    database = health.check_database()
    checks = {"database": database}
    if database["ok"]:
        now = timezone.now()
        checks |= {"task_worker": health.check_task_worker(now=now), "task_queue": health.check_task_queue(now=now),
                   "sweep": check_sweep(now=now), "outbox": check_outbox(now=now)}
    return health.readiness_response(request, checks)


class BackstopCollector:
    """The figures, read afresh on every scrape (cheap aggregates; see the selectors)."""

    def collect(self):
        now = timezone.now()
        held = money_held()
        yield GaugeMetricFamily("backstop_money_held_orders", "Orders whose money Stripe took without service yet.",
                                value=held["orders"])
        cents = GaugeMetricFamily("backstop_money_held_cents", "Money held without service, in cents.",
                                  labels=["currency"])
        for currency, amount in sorted(held["cents_by_currency"].items()):
            cents.add_metric([currency], amount)
        yield cents
        yield GaugeMetricFamily("backstop_money_held_oldest_seconds",
                                "How long the oldest money held without service has waited (0: none held).",
                                value=_seconds_since(held["oldest_since"], now))

        emails = emails_unsent()
        yield GaugeMetricFamily("backstop_emails_unsent", "Transactional emails waiting to be sent.",
                                value=emails["count"])
        yield GaugeMetricFamily("backstop_email_unsent_oldest_seconds",
                                "How long the oldest unsent transactional email has waited (0: none).",
                                value=_seconds_since(emails["oldest_at"], now))

        sweep = sweep_health(now=now)
        yield GaugeMetricFamily("backstop_sweep_last_success_timestamp_seconds",
                                "When the sweep last finished a clean pass (Unix time; 0: never).",
                                value=sweep.last_ok_at.timestamp() if sweep.last_ok_at else 0)
        yield GaugeMetricFamily("backstop_sweep_healthy", "1 when the sweep is doing its job.",
                                value=int(sweep.healthy))

        orders = GaugeMetricFamily("backstop_orders", "Orders by state.", labels=["state"])
        for state, count in orders_by_state().items():
            orders.add_metric([state], count)
        yield orders

        deliveries = access_deliveries_backlog()
        yield GaugeMetricFamily("backstop_access_webhooks_pending",
                                "Access events not yet delivered to the product (ACCESS_WEBHOOK_URL).",
                                value=deliveries["count"])
        yield GaugeMetricFamily("backstop_access_webhook_oldest_pending_seconds",
                                "How long the oldest undelivered access event has waited (0: none).",
                                value=_seconds_since(deliveries["oldest_at"], now))

        tasks = health.task_queue_figures(now=now)
        yield GaugeMetricFamily("backstop_tasks_queued", "Tasks in the queue (waiting or being run).",
                                value=tasks["queued"])
        yield GaugeMetricFamily("backstop_task_oldest_queued_seconds",
                                "How long the oldest task nobody has taken has waited (0: none).",
                                value=tasks["oldest_queued_seconds"])
        last_seen = task_worker_last_seen()
        yield GaugeMetricFamily("backstop_task_worker_last_seen_timestamp_seconds",
                                "When a task worker was last alive (Unix time; 0: never).",
                                value=last_seen.timestamp() if last_seen else 0)


@never_cache
def metrics(request):
    """Prometheus's text format, to METRICS_TOKEN's holder only (Bearer). Without the setting there
    is no such page (404); without the token, 401."""
    if not settings.METRICS_TOKEN:
        raise Http404
    if not health.holds_the_token(request):
        response = HttpResponse("A Bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackstopCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
