"""Retention: sweep runs, webhook log, support reply bodies and answered support mail pruned after
their periods by a daily schedule; bookkeeping rows stay (docs/retention.md)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from djstripe.models import WebhookEventTrigger

from billing.models import ReconcileRun
from billing.services.retention import retention_prune
from outbox.models import OutboundEmail
from support.models import InboundMessage
from support.retention import support_mail_prune
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
LONG_AGO = NOW - timedelta(days=800)


def run(status, started_at):
    return ReconcileRun.objects.create(started_at=started_at, status=status)


def test_old_sweep_runs_are_pruned_but_the_newest_pass_and_success_stay():
    newest_ok = run(ReconcileRun.Status.OK, LONG_AGO + timedelta(minutes=1))
    newest = run(ReconcileRun.Status.FAILED, LONG_AGO + timedelta(minutes=2))
    run(ReconcileRun.Status.OK, LONG_AGO)

    retention_prune(now=NOW)

    assert set(ReconcileRun.objects.values_list("id", flat=True)) == {newest_ok.id, newest.id}


def test_recent_sweep_runs_stay():
    recent = [run(ReconcileRun.Status.OK, NOW - timedelta(days=day)) for day in (1, 2)]

    retention_prune(now=NOW)

    assert ReconcileRun.objects.count() == len(recent)


def test_webhook_log_rows_past_their_period_are_deleted():
    old = WebhookEventTrigger.objects.create(remote_ip="127.0.0.1", headers={}, body='{"email": "a@example.com"}')
    WebhookEventTrigger.objects.filter(pk=old.pk).update(created=NOW - timedelta(days=91))
    recent = WebhookEventTrigger.objects.create(remote_ip="127.0.0.1", headers={}, body="{}")

    retention_prune(now=NOW)

    assert list(WebhookEventTrigger.objects.values_list("id", flat=True)) == [recent.id]


def test_a_support_reply_keeps_its_row_but_not_its_words_past_the_period():
    reply = OutboundEmail.objects.create(kind="support_reply", recipient="a@example.com",
                                         status=OutboundEmail.Status.SENT, subject="Re: receipt", body="Here it is")
    OutboundEmail.objects.filter(pk=reply.pk).update(created_at=LONG_AGO)

    retention_prune(now=NOW)

    reply.refresh_from_db()
    assert (reply.body, reply.status) == ("", OutboundEmail.Status.SENT)


def test_a_confirmation_of_an_order_is_bookkeeping_and_stays():
    order = OrderFactory()
    email = OutboundEmail.objects.create(about=order, kind="confirmation",
                                         recipient=order.email, status=OutboundEmail.Status.SENT)
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=LONG_AGO)

    retention_prune(now=NOW)

    assert OutboundEmail.objects.filter(pk=email.pk).exists()


def test_answered_support_mail_past_its_period_is_deleted_and_open_mail_stays():
    answered = InboundMessage.objects.create(message_id="m1", from_email="a@example.com", body="old",
                                             status=InboundMessage.Status.ANSWERED)
    waiting = InboundMessage.objects.create(message_id="m2", from_email="b@example.com", body="still open")
    InboundMessage.objects.filter(pk__in=[answered.pk, waiting.pk]).update(received_at=LONG_AGO)

    support_mail_prune(now=NOW)

    assert list(InboundMessage.objects.values_list("id", flat=True)) == [waiting.id]


def test_the_periods_are_settings(settings):
    settings.RETAIN_SWEEP_RUNS = timedelta(days=1)
    run(ReconcileRun.Status.OK, NOW - timedelta(days=3))
    run(ReconcileRun.Status.OK, NOW - timedelta(days=2))

    retention_prune(now=NOW)

    assert ReconcileRun.objects.count() == 1


def test_the_prunes_run_daily_by_the_schedule():
    call_command("setup_schedules", stdout=StringIO())

    funcs = set(Schedule.objects.filter(schedule_type=Schedule.DAILY).values_list("func", flat=True))
    assert {"billing.services.retention.retention_prune", "support.retention.support_mail_prune"} <= funcs
