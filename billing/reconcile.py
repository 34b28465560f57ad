"""The sweep: one pass of the safety net, run every minute (cron or the django-q2 schedule).

1. Pull sync: mirror what Stripe has into dj-stripe's tables (billing/mirror.py).
2. Ask the mirror and the orders two set-based questions (billing/selectors.py) and fix each
   answer through the same services every other path uses: `order_settle`, `order_adopt`,
   `order_hold_money`, `order_refund`.
3. Follow up what is in motion: refunds not yet confirmed, held money past its deadline,
   abandoned checkouts, emails stuck or given up, alerts not yet delivered.

Safe to run twice at once on two hosts: a lease row (billing.locks.lease_take) makes the second one skip,
and every step is idempotent anyway (settle converges, adoption is unique per reference, refunds
carry idempotency keys), so even without the lock nothing is done twice.
"""

import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import locks, mirror, selectors, services, signals, stripe_api
from billing.errors import BillingError, CustomerErased
from billing.models import Order, OrderState, ReconcileRun
from billing.services.erasure import erasures_reapply
from config.failpoints import failpoint
from outbox import services as outbox_services
from outbox.models import OutboundEmail

logger = logging.getLogger(__name__)
S = OrderState

# Mirror rows changed this long before the previous run started are looked at again.
WINDOW_OVERLAP = timedelta(minutes=2)
# A refund Stripe has not confirmed after this long is asked for again (same idempotency key).
REFUND_RETRY_AFTER = timedelta(minutes=2)
MAX_RECORDED_ACTIONS = 200


@dataclass
class SweepReport:
    dry_run: bool = False
    window_start: datetime | None = None
    counts: Counter = field(default_factory=Counter)
    actions: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    keepalive: Callable[[], None] = lambda: None  # renews the sweep's lease while it works

    def act(self, case: str, text: str):
        self.keepalive()
        self.counts[case] += 1
        self.actions.append(("would " if self.dry_run else "") + text)
        logger.info("sweep: %s%s", "(dry run) " if self.dry_run else "", text)

    def fail(self, case: str, text: str):
        self.counts["errors"] += 1
        self.errors.append(f"{case}: {text}")
        logger.warning("sweep: %s failed: %s", case, text)


def reconcile_run(*, dry_run: bool = False, since: datetime | None = None, now: datetime | None = None,
                  host: str | None = None) -> ReconcileRun | SweepReport:
    """One pass. Returns the recorded run, or with `dry_run` the report of what it would do."""
    now = now or timezone.now()
    started = time.monotonic()
    report = SweepReport(dry_run=dry_run)
    lease = _exclusive()
    with lease as got_lock:
        if not got_lock:
            logger.info("sweep: another sweep is running; skipped")
            if dry_run:
                return report
            return ReconcileRun.objects.create(started_at=now, finished_at=timezone.now(), host=host or _host(),
                                               status=ReconcileRun.Status.SKIPPED, duration_ms=0)
        report.window_start = since if since is not None else _default_window_start()
        if not dry_run:  # a dry run's work is one transaction: a renewal there would lock the row
            report.keepalive = lease.renew
        run = None
        if not dry_run:
            run = ReconcileRun.objects.create(started_at=now, host=host or _host(), widened=since is not None,
                                              window_start=report.window_start)
        try:
            if dry_run:
                # The whole pass, pull sync included, in a transaction that is rolled back: the
                # report then shows what a real pass would find, and nothing is kept or sent.
                with transaction.atomic():
                    _sweep(report, now=now, since=since)
                    transaction.set_rollback(True)
            else:
                _sweep(report, now=now, since=since)
            status = ReconcileRun.Status.ERRORS if report.errors else ReconcileRun.Status.OK
        except Exception as exc:  # the run record must say that it failed, then cron shows it too
            logger.exception("sweep: failed")
            report.fail("sweep", f"{exc.__class__.__name__}: {exc}")
            status = ReconcileRun.Status.FAILED
            if run is None:
                raise
        if run is None:
            return report
        run.finished_at = timezone.now()
        run.status = status
        run.counts = dict(report.counts)
        run.actions = report.actions[:MAX_RECORDED_ACTIONS]
        run.errors = report.errors[:MAX_RECORDED_ACTIONS]
        run.duration_ms = int((time.monotonic() - started) * 1000)
        run.save()
        _announce(run)
        if status == ReconcileRun.Status.FAILED:
            raise RuntimeError(f"sweep failed: {report.errors[-1]}")
        return run


def _sweep(report: SweepReport, *, now: datetime, since: datetime | None):
    dry_run = report.dry_run
    sync = mirror.stripe_mirror_sync(since=int(since.timestamp()) if since else None)
    for resource, count in sync.mirrored.items():
        report.counts[f"sync_{resource}"] += count
    for error in sync.errors:
        report.fail("sync", error)
    report.keepalive()

    # People erased since the backup this database may have been restored from: erased again
    # before anything is settled or sent to them (docs/decisions/0025-erasure.md).
    if not dry_run:
        for placeholder, problem in erasures_reapply(changed_since=report.window_start):
            if problem:
                report.fail("erase", f"{placeholder}: {problem}")
            else:
                report.act("erased_again", f"erased {placeholder} again: Stripe marks their payments erased")

    # Open orders behind a succeeded charge: finish them, or hold the money openly.
    grace_cutoff = now - settings.RECONCILE_GRACE
    seen = set()
    for found in selectors.orders_behind_stripe(charged_before=grace_cutoff):
        seen.add(found.order_id)
        _settle(report, found, why=f"charged in Stripe, order still {found.order_state}")

    # Backstop charges out of step with their order (or with no order at all).
    for found in selectors.backstop_charges_out_of_step(changed_since=report.window_start):
        if found.order_id is None:
            _adopt(report, found)
        elif found.order_id not in seen:
            seen.add(found.order_id)
            _settle(report, found, why=f"Stripe shows a {found.case} the order does not")

    _follow_up_refunds(report, now=now)
    _refund_overdue_held_money(report, now=now)
    canceled = services.orders_cancel_abandoned(now=now, dry_run=dry_run)
    for reference in canceled:
        report.act("canceled_abandoned", f"cancel {reference}: no payment started within a day")
    _cancel_abandoned_payments(report, now=now)
    _outbox(report)


def _settle(report: SweepReport, found: selectors.Discrepancy, *, why: str):
    case = found.case if found.case in ("hold", "dispute", "mismatch", "refund") else "settled"
    if report.dry_run:
        report.act(case, f"settle {found.reference} ({why}; charge {found.charge_id})")
        return
    failpoint("sweep.before_fix")
    try:
        order = services.order_settle(order_id=found.order_id, actor="sweep", reason=why)
    except Exception as exc:  # one order's trouble (Stripe, a bug, a constraint) must not stop the net
        if not isinstance(exc, (BillingError, stripe_api.StripeError)):
            logger.exception("sweep: settling %s failed", found.reference)
        report.fail(case, f"{found.reference}: {exc}")
        # Stripe (per the mirror) has the money and we could not finish: tell the customer now.
        services.order_hold_money(order_id=found.order_id, actor="sweep",
                                  reason=f"The sweep could not finish the order: {exc}")
        return
    report.act(case, f"settled {order.reference}: {found.order_state} -> {order.state} ({why})")


def _adopt(report: SweepReport, found: selectors.Discrepancy):
    if report.dry_run:
        report.act("adopted", f"adopt {found.reference} from Stripe payment {found.payment_intent_id}")
        return
    failpoint("sweep.before_fix")
    try:
        order = services.order_adopt(payment_intent_id=found.payment_intent_id, actor="sweep")
    except CustomerErased as exc:
        report.act("erased", str(exc))
        return
    except Exception as exc:  # as above: one charge's trouble must not stop the net
        if not isinstance(exc, (BillingError, stripe_api.StripeError)):
            logger.exception("sweep: adopting %s failed", found.payment_intent_id)
        report.fail("adopt", f"{found.reference or found.charge_id}: {exc}")
        signals.attention(kind="unmatched_charge", key=f"unmatched:{found.charge_id}",
                    summary=f"Stripe charge {found.charge_id} ({found.reference}) has no order and could not "
                            "be recreated", details=str(exc))
        return
    report.act("adopted", f"adopted {order.reference} from Stripe payment {found.payment_intent_id}: {order.state}")


def _cancel_abandoned_payments(report: SweepReport, *, now: datetime):
    """Payment attempts left unfinished (the bank's check abandoned, a card form never sent) for
    ABANDONED_PAYMENT_AFTER: canceled in Stripe so they can never be charged, unless Stripe shows
    they went through meanwhile, which settle then records."""
    for order_id in services.orders_with_abandoned_payment(now=now):
        reference = Order.objects.values_list("reference", flat=True).get(pk=order_id)
        if report.dry_run:
            report.act("canceled_unfinished_payment", f"check {reference} with Stripe; cancel its unfinished payment")
            continue
        failpoint("sweep.before_fix")
        try:
            order = services.order_payment_abandoned_cancel(order_id=order_id, now=now)
        except Exception as exc:  # one order's trouble must not stop the net
            if not isinstance(exc, (BillingError, stripe_api.StripeError)):
                logger.exception("sweep: canceling the payment of %s failed", reference)
            report.fail("canceled_unfinished_payment", f"{reference}: {exc}")
            continue
        if order.state == S.CANCELED:
            report.act("canceled_unfinished_payment",
                       f"canceled {reference}: payment unfinished since {order.payment_status_at:%Y-%m-%d %H:%M}")
        else:
            report.act("settled", f"settled {reference} instead of canceling: {order.state} "
                                  f"(Stripe: {order.payment_status.replace('_', ' ')})")


def _follow_up_refunds(report: SweepReport, *, now: datetime):
    waiting = Order.objects.filter(state=S.REFUND_PENDING, state_changed_at__lt=now - REFUND_RETRY_AFTER)
    for order_id, reference in waiting.values_list("id", "reference")[:100]:
        if report.dry_run:
            report.act("refund_followed_up", f"check the refund of {reference} with Stripe")
            continue
        try:
            order = services.order_settle(order_id=order_id, actor="sweep", reason="refund not yet confirmed")
            if order.state == S.REFUND_PENDING:
                order = services.order_refund(order_id=order_id, actor="sweep", reason=order.refund_reason
                                              or "Refund retried by the sweep")
        except (BillingError, stripe_api.StripeError) as exc:
            report.fail("refund_followed_up", f"{reference}: {exc}")
            continue
        report.act("refund_followed_up", f"refund of {reference} followed up: {order.state}")


def _refund_overdue_held_money(report: SweepReport, *, now: datetime):
    overdue = Order.objects.filter(refund_deadline_at__lte=now, held_since__isnull=False)
    for order_id, reference in overdue.values_list("id", "reference")[:100]:
        if report.dry_run:
            report.act("refunded_at_deadline", f"refund {reference}: held-money deadline passed")
            continue
        try:
            # Last chance to finish it: if Stripe and the order now agree, the customer keeps service.
            order = services.order_settle(order_id=order_id, actor="sweep", reason="held-money deadline reached")
            if order.held_since is None:
                report.act("settled", f"settled {reference} at its held-money deadline: {order.state}")
                continue
            deadline = order.refund_deadline_at
            order = services.order_refund(order_id=order_id, actor="sweep", reason=(
                f"We could not finish setting up your account by {timezone.localtime(deadline):%B %-d at %H:%M %Z}, "
                "so, as promised, we refunded you automatically. You owe us nothing."))
        except (BillingError, stripe_api.StripeError) as exc:
            report.fail("refunded_at_deadline", f"{reference}: {exc}")
            continue
        report.act("refunded_at_deadline", f"refunded {reference} at its held-money deadline: {order.state}")


def _outbox(report: SweepReport):
    if report.dry_run:
        due = OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING,
                                           next_attempt_at__lte=timezone.now()).count()
        if due:
            report.act("emails_requeued", f"send {due} owed emails")
        return
    result = outbox_services.outbound_email_dispatch_due()
    if result["due"]:
        report.act("emails_requeued", f"sent {result['sent']} of {result['due']} owed emails")
    # Order emails only: a password link that failed is simply asked for again by its customer.
    # Newest first: support opens one case per email (by key), so older ones already have theirs.
    stuck = (OutboundEmail.objects.filter(status__in=[OutboundEmail.Status.FAILED, OutboundEmail.Status.UNCERTAIN],
                                          about_id__isnull=False)
             .prefetch_related("about").order_by("-id"))
    for email in stuck[:100]:
        opened = signals.attention(
            kind="email", key=f"email:{email.id}", order=email.about, email=email,
            summary=f"{email.about.reference}: {email.get_kind_display().lower()} to {email.recipient} "
                    f"{'may not have been sent' if email.status == 'uncertain' else 'could not be sent'}",
            details=email.last_error)
        if opened:
            report.act("emails_to_person", f"handed email {email.id} ({email.kind}, {email.about.reference}) "
                                           "to a person")


def _announce(run: ReconcileRun):
    """Tell the apps above how this pass ended (its status, once recorded), so they can watch the
    sweep itself and retry what they owe (lost alert notifications). A listener's trouble never
    undoes the pass."""
    notified = 0
    for receiver, result in signals.sweep_finished.send_robust(sender=None, run=run, status=run.status):
        if isinstance(result, Exception):
            logger.error("sweep: listener %s failed", receiver, exc_info=result)
        elif isinstance(result, int):
            notified += result
    if notified:
        run.counts = {**run.counts, "alerts_resent": run.counts.get("alerts_resent", 0) + notified}
        run.save(update_fields=["counts"])


def _default_window_start() -> datetime | None:
    """Mirror rows changed since the previous completed run began (minus an overlap)."""
    previous = (ReconcileRun.objects.filter(status__in=[ReconcileRun.Status.OK, ReconcileRun.Status.ERRORS])
                .order_by("-started_at").values_list("started_at", flat=True).first())
    return previous - WINDOW_OVERLAP if previous else None


# How long the sweep's lease lasts unless renewed; a pass renews it after the pull sync and at
# every case it acts on. A pass killed mid-way keeps the others out this long at most (a session
# advisory lock was freed at once by the dying connection, but not behind PgBouncer). A pass that
# goes longer without renewing (a slow pull sync) lets a second one overlap: harmless, every step
# is idempotent.
SWEEP_LEASE_SECONDS = 20


class _exclusive:
    """The sweep's lease (billing.locks.lease_take), so two hosts' sweeps do not overlap.

    Only a courtesy: correctness never depends on it (every step is idempotent). A row rather than
    an advisory lock, so it works behind PgBouncer's transaction pooling and frees itself when the
    sweep holding it is killed (docs/scaling.md).
    """

    def __enter__(self):
        self.holder = f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = locks.lease_take("sweep", holder=self.holder, seconds=SWEEP_LEASE_SECONDS)
        return self.held

    def renew(self):
        if self.held:
            locks.lease_take("sweep", holder=self.holder, seconds=SWEEP_LEASE_SECONDS)

    def __exit__(self, *exc):
        if self.held:
            locks.lease_release("sweep", holder=self.holder)


def _host() -> str:
    return socket.gethostname()[:255]
