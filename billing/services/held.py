"""Money held without service: Stripe has the customer's money and the order cannot be finished
yet. The customer is told at once, with the date of the automatic refund, and the team is alerted
(docs/decisions/0004-held-money-refunds-by-default.md, 0005-tell-the-customer-at-once.md)."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import locks, signals
from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderEvent, OrderState
from billing.services.history import event_money_held
from billing.services.outbox import _owe_once
from config.failpoints import failpoint

S = OrderState


def _hold_money(order: Order, *, actor: str, ids: dict, pi=None) -> OrderEvent:
    """Start holding the customer's money openly: the deadline, the email, the team's alert.

    Called inside the order's lock, once per order (held_since is then set); the caller saves.
    """
    now = timezone.now()
    order.held_since = now
    order.refund_deadline_at = now + settings.HELD_MONEY_DEADLINE
    deadline = f"{timezone.localtime(order.refund_deadline_at):%Y-%m-%d %H:%M %Z}"
    failpoint("held_money.after_hold")
    if not order.emails.filter(kind=EmailKind.PAYMENT_RECEIVED).exists():
        _owe_once(order, EmailKind.PAYMENT_RECEIVED, pi)
    signals.attention(kind="held_money", key=f"held-money:{order.id}", order=order,
                summary=f"{order.reference}: {order.paid_display} held without service; "
                        f"refunded automatically at {deadline} unless finished first",
                details=order.attention_reason)
    return event_money_held(order, actor=actor, refund_deadline_at=order.refund_deadline_at, stripe_ids=ids)


def order_hold_money(*, order_id: int, actor: str, reason: str) -> Order:
    """Stripe has the customer's money and we could not finish the order just now: say so.

    For when settle itself fails (Stripe or our database unreachable) while the mirror shows a
    succeeded charge. The order keeps its state, so the next settle still finishes it on its
    own; meanwhile the customer is told, with the date of their automatic refund, and the team
    is alerted. Once per order.
    """
    with transaction.atomic():
        order = locks.order_lock(order_id)
        if order.held_since is not None or order.state in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED):
            return order
        if not order.attention_reason:
            order.attention_reason = reason[:500]
        event = _hold_money(order, actor=actor, ids={"payment_intent": order.stripe_payment_intent_id or ""})
        order.save()
        event.save()
    return order
