"""Alerts to the team: one per case, by email and an optional chat webhook, never lost."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import ReconcileRun
from support import services
from support.models import Alert
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat_webhook():
    """A local stand-in for a Slack-compatible incoming webhook: records what it is sent."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/backstop", received
    server.shutdown()
    server.server_close()


def raise_alert(key="held-money:1", **fields):
    fields.setdefault("kind", Alert.Kind.HELD_MONEY)
    fields.setdefault("summary", "BK-0000-0000: $249.00 held without service")
    return services.alert_raise(key=key, **fields)


def test_an_alert_is_emailed_to_the_team_once_however_often_it_is_raised(
    settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_TEAM_EMAILS = ["ana@backstop.localhost", "ben@backstop.localhost"]

    with django_capture_on_commit_callbacks(execute=True):
        raise_alert()
        raise_alert()

    assert Alert.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["ana@backstop.localhost", "ben@backstop.localhost"]]
    assert "$249.00 held without service" in mail.outbox[0].subject


def test_an_alert_is_posted_to_the_chat_webhook_when_one_is_configured(
    settings, chat_webhook, django_capture_on_commit_callbacks
):
    url, received = chat_webhook
    settings.ALERT_WEBHOOK_URL = url

    with django_capture_on_commit_callbacks(execute=True):
        raise_alert()

    assert len(received) == 1
    assert "$249.00 held without service" in received[0]["text"]


def test_an_alert_about_an_order_appears_on_its_timeline():
    order = OrderFactory()

    raise_alert(key=f"held-money:{order.id}", order=order)

    assert order.events.filter(reason__startswith="Team alerted:").count() == 1


def test_an_alert_that_could_not_be_sent_is_sent_by_a_later_pass(settings, django_capture_on_commit_callbacks):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nobody-listens"
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert()
    alert.refresh_from_db()
    assert (alert.notified_at, alert.notify_attempts) == (None, 1)
    settings.ALERT_WEBHOOK_URL = None
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    sent = services.alerts_notify_due()

    alert.refresh_from_db()
    assert sent == 1
    assert alert.notified_at is not None


def test_the_daily_digest_lists_what_the_nets_fixed_and_what_is_still_open(settings):
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    now = timezone.now()
    ReconcileRun.objects.create(started_at=now - timedelta(hours=2), status=ReconcileRun.Status.OK,
                                counts={"settled": 2, "adopted": 1, "sync_charges": 40})
    ReconcileRun.objects.create(started_at=now - timedelta(hours=1), status=ReconcileRun.Status.OK,
                                counts={"settled": 1})
    raise_alert(summary="BK-1111-2222: $249.00 held without service")

    body = services.daily_digest_send(now=now)

    assert "settled: 3" in body
    assert "adopted: 1" in body
    assert "sync" not in body.split("Fixed by the nets")[1].split("Open cases")[0]
    assert "BK-1111-2222" in body
    assert mail.outbox[-1].subject == "[Backstop] Daily digest: 4 fixed, 1 open"
