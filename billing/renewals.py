"""The year's end: reminders before a plan ends, one email on the day, and the customer's opt-out.

There is no automatic renewal (docs/decisions/0010-no-automatic-renewal.md), so these emails are
how a customer hears that their paid time is running out. Each is owed at most once per
entitlement, by a unique `dedupe_key` on the outbox row ("renewal:<entitlement>:30d",
"plan-ended:<entitlement>"): the hourly schedule, cron and a person at the command line may all
run `reminders_send` at once and the customer still gets one copy.

Which email is due, given `settings.RENEWAL_REMINDERS` (default 30 and 7 days before the end):

- before the end, only the nearest reminder whose window has opened: with 5 days left that is the
  7-day one, never a late "30 days" (the email says the true number of days, worked out when it is
  sent);
- once the end has passed, the plan-ended email, but only within PLAN_ENDED_WITHIN of it: after an
  outage of a week, a plan that ended days ago gets nothing rather than stale news;
- nothing for a plan that was renewed, refunded or revoked, for staff, or for a customer who
  turned reminders off (billing.selectors.entitlements_renewal_email_candidates).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.periods import days_left
from accounts.services import renewal_reminders_stop
from billing.email_kinds import Kind
from billing.selectors import entitlements_renewal_email_candidates
from billing.services.history import event_reminders_off
from config.failpoints import failpoint
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue

logger = logging.getLogger(__name__)

RENEWAL_KINDS = (Kind.RENEWAL_REMINDER, Kind.PLAN_ENDED)
# How long after a plan ends its "your plan has ended" email may still go out.
PLAN_ENDED_WITHIN = timedelta(days=2)


def duration_label(offset: timedelta) -> str:
    """'30d', '36h', '90m': how a reminder is named in its dedupe key and in the log."""
    seconds = int(offset.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class RemindersSummary:
    dry_run: bool
    reminders: int = 0  # reminders owed by this run (or that would be, in a dry run)
    ended: int = 0  # plan-ended emails owed by this run
    already: int = 0  # due, but owed by an earlier run already
    actions: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict:
        return {"reminders": self.reminders, "ended": self.ended, "already_owed": self.already}


def _due(entitlement, now, reminders):
    """(kind, dedupe key, what to say in the log) of the one email due now, or None."""
    if entitlement.ends_at <= now:
        if now - entitlement.ends_at > PLAN_ENDED_WITHIN:
            return None
        return Kind.PLAN_ENDED, f"plan-ended:{entitlement.id}", "plan-ended email"
    left = entitlement.ends_at - now
    opened = [offset for offset in reminders if offset >= left]
    if not opened:
        return None
    label = duration_label(min(opened))
    return (Kind.RENEWAL_REMINDER, f"renewal:{entitlement.id}:{label}",
            f"{label} reminder ({days_left(entitlement.ends_at, now)} days left)")


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reminders_send(*, now: datetime | None = None, dry_run: bool = False) -> RemindersSummary:
    """Owe each customer the renewal email now due to them, once; sent by the outbox after commit."""
    now = now or timezone.now()
    reminders = sorted(settings.RENEWAL_REMINDERS, reverse=True)
    summary = RemindersSummary(dry_run=dry_run)
    furthest = reminders[0] if reminders else timedelta(0)
    candidates = entitlements_renewal_email_candidates(ending_after=now - PLAN_ENDED_WITHIN,
                                                       ending_by=now + furthest)
    for chunk in _chunks(candidates.iterator(chunk_size=500), 500):
        due = [(entitlement, *what) for entitlement in chunk
               if (what := _due(entitlement, now, reminders)) is not None]
        # One query per chunk for the emails already owed: most of the window was emailed on an
        # earlier run, and this runs every hour.
        owed = set(OutboundEmail.objects.filter(dedupe_key__in=[key for _, _, key, _ in due])
                   .values_list("dedupe_key", flat=True))
        for entitlement, kind, key, what in due:
            line = f"{entitlement.order.reference}: {what}, plan ends {entitlement.ends_at:%Y-%m-%d}"
            if key in owed:
                summary.already += 1
                continue
            if dry_run:
                summary.actions.append(f"would send {line}")
            else:
                with transaction.atomic():
                    email = outbound_email_queue(kind=kind, about=entitlement.order,
                                                 recipient=entitlement.user.email, dedupe_key=key)
                if email is None:  # another run owed it a moment ago
                    summary.already += 1
                    continue
                failpoint("reminders.after_email_row")
                summary.actions.append(f"queued {line}")
                logger.info("Renewal email owed: %s (outbox %s)", line, email.id)
            if kind == Kind.PLAN_ENDED:
                summary.ended += 1
            else:
                summary.reminders += 1
    # Nothing due is not news: an hourly cron line at -v 0 stays silent (docs/deploy/README.md).
    if any(summary.counts.values()):
        logger.info("Renewal emails%s: %s", " (dry run)" if dry_run else "", summary.counts)
    return summary


def reminders_unsubscribe(*, user, via: str) -> bool:
    """Turn off the customer's renewal emails; True if they were on. Support sees it on the
    customer's latest order; the account page turns them back on."""
    changed = renewal_reminders_stop(user=user)
    if changed:
        latest = user.orders.exclude(paid_at__isnull=True).order_by("-paid_at").first()
        if latest is not None:
            event_reminders_off(latest, via=via)
        logger.info("Renewal reminders turned off for user %s (%s)", user.pk, via)
    return changed
