"""Retention: what billing keeps only for a while, pruned once a day by the schedule (docs/retention.md).

Orders, refunds, their events and the outbox rows that say what was sent are bookkeeping and are
never pruned here (an erasure removes the person from them: billing/services/erasure.py).
"""

import logging

from django.conf import settings
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from billing.models import ReconcileRun
from outbox.models import OutboundEmail

logger = logging.getLogger(__name__)


def retention_prune(*, now=None) -> dict[str, int]:
    """Delete sweep runs and webhook log rows past their periods, and empty the bodies of support
    replies past theirs. Safe to run at any time, any number of times. Returns what it pruned."""
    now = now or timezone.now()
    Status = ReconcileRun.Status
    # The sweep's health reads its newest pass and newest success: those stay whatever their age.
    keep = {ReconcileRun.objects.filter(status=Status.OK).order_by("-started_at").values_list("id", flat=True).first(),
            ReconcileRun.objects.exclude(status=Status.RUNNING).order_by("-started_at")
            .values_list("id", flat=True).first()}
    runs, _ = (ReconcileRun.objects.filter(started_at__lt=now - settings.RETAIN_SWEEP_RUNS)
               .exclude(status=Status.RUNNING).exclude(id__in=[pk for pk in keep if pk]).delete())
    # dj-stripe writes every webhook request body here; Stripe stops retrying an event after 3 days.
    webhooks, _ = WebhookEventTrigger.objects.filter(created__lt=now - settings.RETAIN_WEBHOOK_LOG).delete()
    # Only a person's reply keeps its words on the row (support's kind); the other kinds render templates.
    bodies = (OutboundEmail.objects.filter(created_at__lt=now - settings.RETAIN_EMAIL_BODIES)
              .exclude(body="").exclude(status__in=OutboundEmail.STILL_TRYING)
              .update(body=""))
    pruned = {"sweep_runs": runs, "webhook_log": webhooks, "email_bodies": bodies}
    if any(pruned.values()):
        logger.info("retention: pruned %s", pruned)
    return pruned
