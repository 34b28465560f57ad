"""The console's landing page: only what needs a person (needs_attention), and what support must
hear when the sweep itself is down (sweep_notice)."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

from django.db.models import Count, Q
from django.utils import timezone

from billing.email_kinds import ONCE_PER_ORDER
from billing.models import Order
from billing.money import format_money
from billing.selectors import (
    SWEEP_STALE_AFTER_MINUTES,
    orders_behind_stripe,
    orders_with_refund_sent_back,
    sweep_health,
)
from outbox.models import OutboundEmail
from support.models import Alert, InboundMessage
from support.selectors.collaboration import first_response, queue_claims
from support.selectors.common import DUPLICATE_PAYMENT_WINDOW_MINUTES, NETS_HEAD_START_MINUTES, S, _when
from support.selectors.money import order_money

# --- The sweep watched: what support must hear when the safety net itself is down -----------------

@dataclass(frozen=True)
class SweepNotice:
    key: str  # one alert per outage: everything since the last clean pass
    title: str  # e.g. "The sweep is failing: its last 3 passes finished with errors"
    detail: str
    facts: str = ""  # the detail's facts alone (when, the newest error), for the team's alert and its own words


def sweep_notice(*, now: datetime | None = None, health=None) -> SweepNotice | None:
    """None while the sweep does its job; else what is wrong with it and what to do, for the
    console's landing page, the case pages and the team's alert. `health` is
    billing.selectors.sweep_health(now=now), when the caller already has it."""
    now = now or timezone.now()
    health = health or sweep_health(now=now)
    if health.healthy:
        return None
    stuck_for = timedelta(minutes=SWEEP_STALE_AFTER_MINUTES)
    if health.running_since and health.running_since < now - stuck_for:
        title = f"The sweep is stuck: a pass started at {_when(health.running_since)} has not finished"
    elif health.stalled and health.last_finished_at is None:
        title = "The sweep has never run"
    elif health.stalled:
        title = f"The sweep has not finished a pass since {_when(health.last_finished_at)}"
    else:
        title = f"The sweep is failing: its last {health.failures} passes finished with errors"
    facts = [f"Last clean pass: {_when(health.last_ok_at) if health.last_ok_at else 'none recorded'}."]
    if health.failures and health.last_error:
        facts.append(f"Newest error: {health.last_error}.")
    # Recover asks the same Stripe the sweep does: while Stripe fails, pressing it on every case fails too.
    advice = ("Until it recovers, nothing finishes charged orders, retries refunds or refunds held money at its "
              "deadline on its own; nothing is lost, the first clean pass catches up. If Stripe is having trouble "
              "(status.stripe.com), wait: Recover would fail the same way. Otherwise check that the worker "
              "(manage.py qcluster) is running; Reconcile runs shows each pass, and Recover on a case finishes it now.")
    return SweepNotice(key=f"sweep-down:after-{health.last_ok_id or 'none'}", title=title,
                       detail=" ".join([*facts, advice]), facts=" ".join(facts))


# --- The landing page: one search box, and only what needs a person ------------------------

@dataclass(frozen=True)
class QueueItem:
    kind: str
    title: str
    detail: str
    since: datetime
    money_cents: int = 0
    deadline: datetime | None = None
    url: str = ""
    reply_due: datetime | None = None  # support email: when the first reply is due (SUPPORT_FIRST_RESPONSE)
    breached: bool = False  # ... and it is past that
    claimed: str = ""  # "<name> is on it"

    @property
    def money(self) -> str:
        return format_money(self.money_cents, "usd") if self.money_cents else ""


def needs_attention(*, now: datetime | None = None, limit: int = 100) -> list[QueueItem]:
    """Only what needs a person: money held or at risk first, then the longest waiting."""
    now = now or timezone.now()
    items: list[QueueItem] = []
    seen: set[int] = set()

    def order_url(order_id):
        return f"/admin/billing/order/{order_id}/change/"

    stuck = orders_behind_stripe(charged_before=now - timedelta(minutes=NETS_HEAD_START_MINUTES))
    for order in Order.objects.filter(id__in=[s.order_id for s in stuck]):
        seen.add(order.id)
        money = order_money(order, ask_stripe=False)  # the mirror shows the charge that put it here
        items.append(QueueItem("charged_without_service", f"{order.reference}: {money.label}",
                               f"{order.email} · the nets have not finished it", order.paid_at or order.created_at,
                               order.paid_cents, order.refund_deadline_at, order_url(order.id)))
    attention = Q(state__in=[S.NEEDS_REVIEW, S.DISPUTED]) | Q(held_since__isnull=False) | Q(
        state=S.REFUND_PENDING, state_changed_at__lt=now - timedelta(minutes=10))
    for order in Order.objects.filter(attention).exclude(id__in=seen).exclude(state__in=[S.ACTIVE, S.REFUNDED])[:limit]:
        seen.add(order.id)
        kind = {"disputed": "dispute", "refund_pending": "refund_unconfirmed"}.get(order.state, "held_money")
        title = {"dispute": "disputed by the bank", "refund_unconfirmed": "refund not confirmed by Stripe",
                 "held_money": "money held without service"}[kind]
        items.append(QueueItem(kind, f"{order.reference}: {title}",
                               f"{order.email} · {order.attention_reason or order.get_state_display()}",
                               order.held_since or order.state_changed_at,
                               order.paid_cents - order.amount_refunded_cents, order.refund_deadline_at,
                               order_url(order.id)))
    # Refunded, but the customer's bank sent the refund back: Stripe holds the money again.
    for order in orders_with_refund_sent_back().exclude(id__in=seen)[:limit]:
        seen.add(order.id)
        items.append(QueueItem("refund_sent_back", f"{order.reference}: refund sent back by the bank",
                               f"{order.email} · Stripe holds {order.refund_sent_back_display} again: "
                               "return it another way", order.state_changed_at, order.refund_sent_back_cents,
                               url=order_url(order.id)))
    for alert in Alert.objects.filter(kind=Alert.Kind.UNMATCHED_CHARGE, resolved_at__isnull=True)[:limit]:
        items.append(QueueItem("unmatched_charge", alert.summary, alert.details[:200], alert.created_at,
                               url=f"/admin/support/alert/{alert.id}/change/"))
    trouble = Q(status__in=[OutboundEmail.Status.FAILED, OutboundEmail.Status.UNCERTAIN]) | Q(
        esp_status__in=["bounced", "rejected", "failed", "complained"])
    for email in (OutboundEmail.objects.filter(trouble, kind__in=ONCE_PER_ORDER)
                  .prefetch_related("about")[:limit]):
        items.append(QueueItem("email", f"{email.about.reference}: {email.get_kind_display().lower()} "
                               f"{email.esp_status or email.get_status_display().lower()}",
                               f"to {email.recipient} · {email.last_error[:120]}", email.created_at,
                               url=order_url(email.about_id)))
    # Paid twice: two payments within minutes, neither through checkout's renewal offer.
    window = timedelta(minutes=DUPLICATE_PAYMENT_WINDOW_MINUTES)
    unchosen = Order.objects.filter(state__in=[S.PAID, S.ACTIVE], renewal=False,
                                    created_at__gte=now - timedelta(days=30))
    duplicates = unchosen.values("email", "plan_id").annotate(n=Count("id")).filter(n__gt=1)[:limit]
    for dup in duplicates:
        orders = list(unchosen.filter(email=dup["email"], plan_id=dup["plan_id"]).order_by("created_at"))
        close = [b for a, b in pairwise(orders) if b.created_at - a.created_at <= window]
        if not close:
            continue
        items.append(QueueItem("duplicate", f"{dup['email']} paid {len(orders)} times for the same plan within "
                               f"{DUPLICATE_PAYMENT_WINDOW_MINUTES} minutes, not as a renewal",
                               ", ".join(o.reference for o in orders), close[-1].created_at,
                               close[-1].paid_cents, url=order_url(close[-1].id)))
    for message in InboundMessage.objects.filter(status=InboundMessage.Status.OPEN).order_by("received_at")[:limit]:
        wait = first_response(message, now=now)
        items.append(QueueItem("inbound", f"Email from {message.from_email}: {message.subject or '(no subject)'}",
                               message.done_automatically or message.diagnosis[:160], message.received_at,
                               url=f"/admin/support/inboundmessage/{message.id}/change/",
                               reply_due=wait.due, breached=wait.breached))
    # Customers waiting past the first-response target first, then money, then the longest waiting.
    items = sorted(items, key=lambda item: (not item.breached, -item.money_cents, item.since))[:limit]
    claims = queue_claims(item.url for item in items)
    return [replace(item, claimed=claims[item.url]) if item.url in claims else item for item in items]
