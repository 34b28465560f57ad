"""Settle: the one way an order moves on after checkout. Read Stripe's PaymentIntent, lock the
order, re-read it and converge it on Stripe's truth (docs/decisions/0002-settle-reads-stripe-then-locks.md):
billing/settle_decision.py decides the moves from the facts alone; `_converge` applies them here."""

import time
from datetime import UTC, datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from billing import locks, signals, stripe_api
from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderEvent, OrderRefund
from billing.money import format_money
from billing.services.entitlements import _activate, _revoke_entitlement
from billing.services.held import _hold_money
from billing.services.history import event_refund_recorded, event_state_changed
from billing.services.outbox import _owe_once
from billing.settle_decision import (
    Activate,
    AlertDispute,
    AlertRefundSentBack,
    ChangeState,
    HoldMoney,
    Move,
    OrderNow,
    OweRefundEmail,
    RecordRefunded,
    Revoke,
    StripePayment,
    decide,
)
from config import logs
from config.failpoints import failpoint


def order_settle(*, order_id: int, actor: str, reason: str = "", payment_intent=None, user=None,
                 order: Order | None = None) -> Order:
    """Bring the order in line with what Stripe says, and return it.

    Any path may call this any number of times, concurrently: the webhook, the customer's
    status page, the sweep, support. It reads Stripe's PaymentIntent (unless the caller passes a
    fresh one), then locks the order, re-reads it and applies only the moves the truth requires.
    Paid orders become active with exactly one entitlement and one confirmation email; a
    mismatch between what Stripe took and what the order asked for goes to needs_review. `user`:
    the staff member who asked (Recover, a refund), named on the events. `order`: the caller's copy,
    read a moment ago; its PaymentIntent id (stored once, never changed) spares reading the row
    before Stripe is asked. Everything decided is read again under the lock.
    """
    if order is None or order.pk != order_id or not order.stripe_payment_intent_id:
        order = Order.objects.only("id", "reference", "state", "stripe_payment_intent_id").get(pk=order_id)
    if not order.stripe_payment_intent_id:
        return Order.objects.get(pk=order_id)  # nothing in Stripe to settle against yet
    # Lines logged while settling name the order; on an error it stays named for the caller's line.
    logs.bind_order(order.reference)
    if payment_intent is None:
        payment_intent = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    failpoint("settle.after_stripe_read")

    with transaction.atomic():
        order = locks.order_lock(order_id)
        failpoint("settle.after_lock")
        if actor == "webhook":
            failpoint("webhook.inside_settle")  # only the webhook's settle, not the customer's or the sweep's
        _converge(order, payment_intent, actor=actor, reason=reason, user=user)
        failpoint("settle.before_commit")
    logs.unbind_order()
    return order


# Several paths often want to settle one order in the same second: the webhook's events of one
# payment (payment_intent.succeeded, and charge.succeeded where an endpoint still selects it), a
# duplicated delivery, and the customer's return page. Each would read Stripe; one read answers
# them all. The first takes the order's turn (a cache key that lapses by itself, so a killed
# process holds nobody up for longer than this) and, once settled, marks the order answered for as
# long, in the same key; the others wait for that answer instead of asking Stripe again. Waiting is
# an optimisation only: whoever does not see an answer in time reads Stripe itself (the webhook) or
# says it is still checking (the status page). One key, so that taking a free turn is one statement.
SETTLE_TURN_SECONDS = 3
_TURN_TAKEN, _ANSWERED = 1, 2


def _turn_key(order_id: int) -> str:
    return f"billing:settle:{order_id}"


def settle_turn_take(*, order_id: int) -> bool:
    """Take this order's turn to read Stripe, unless another process has it or answered a moment
    ago (`settle_answered` says which; see above)."""
    return cache.add(_turn_key(order_id), _TURN_TAKEN, timeout=SETTLE_TURN_SECONDS)


def settle_answered_mark(*, order_id: int) -> None:
    """The order now says what Stripe said a moment ago: for SETTLE_TURN_SECONDS, nobody asks again."""
    cache.set(_turn_key(order_id), _ANSWERED, timeout=SETTLE_TURN_SECONDS)


def settle_answered(*, order_id: int) -> bool:
    return cache.get(_turn_key(order_id)) == _ANSWERED


def settle_answer_wait(*, order_id: int, seconds: float, poll_seconds: float = 0.1) -> bool:
    """Wait up to `seconds` for the process holding the order's turn to mark it answered."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(poll_seconds)
        if settle_answered(order_id=order_id):
            return True
    return False


def _belongs_to(order: Order, pi) -> bool:
    """Does this PaymentIntent say it pays for this order?

    The reference is the identity that survives a database restored from a backup (row ids are
    reused after a restore; references are random and unique), so it wins over the row id.
    """
    metadata = pi.metadata or {}
    if metadata.get("reference"):
        return metadata["reference"] == order.reference
    return metadata.get("order_id") == str(order.id)


def _converge(order: Order, pi, *, actor: str, reason: str, user=None):
    """Apply what billing/settle_decision.py decides from Stripe's facts and the order's, under the
    order's lock; the caller commits."""
    charge = pi.get("latest_charge") if pi.get("latest_charge") else None
    if isinstance(charge, str):
        # The caller passed an unexpanded PaymentIntent; the charge facts are one call away, but
        # we are inside the lock now, so act on the status alone and let the next settle fill in.
        charge = None
    ids = {"payment_intent": pi.id, **({"charge": charge.id} if charge else {})}
    why = f" ({reason})" if reason else ""
    belongs = _belongs_to(order, pi)
    facts_changed = False
    if belongs and pi.status == "succeeded":
        facts_changed = _record_payment_facts(order, pi, charge)
        if charge is not None:
            _record_refunds(order, charge)

    events = []
    for move in decide(_stripe_payment(pi, charge, belongs=belongs), _order_now(order)):
        events += _apply(order, move, pi=pi, actor=actor, why=why, ids=ids)
    for event in events:
        event.actor_user = user

    status_seen = _record_payment_status(order, pi)
    if events:
        order.save()
        OrderEvent.objects.bulk_create(events)
    elif facts_changed or status_seen:
        order.save(update_fields=[*(PAYMENT_FACTS if facts_changed else []),
                                  *(["payment_status", "payment_status_at"] if status_seen else []), "updated_at"])


def _stripe_payment(pi, charge, *, belongs: bool) -> StripePayment:
    error = pi.get("last_payment_error")
    return StripePayment(
        belongs=belongs, status=pi.status, amount_received=pi.get("amount_received") or 0,
        currency=pi.get("currency") or "", charge_seen=charge is not None,
        amount_refunded=charge.amount_refunded if charge is not None else 0,
        refunded=charge is not None and bool(charge.get("refunded")),
        disputed=charge is not None and bool(charge.get("disputed")),
        payment_error=(error.get("message") or "") if error else None,
        cancellation_reason=pi.get("cancellation_reason") or "",
    )


def _order_now(order: Order) -> OrderNow:
    return OrderNow(state=str(order.state), amount_cents=order.amount_cents, currency=order.currency,
                    amount_refunded_cents=order.amount_refunded_cents, held=order.held_since is not None)


def _apply(order: Order, move: Move, *, pi, actor: str, why: str, ids: dict) -> list[OrderEvent]:
    """Make one decided move on the order in memory (and the rows it owes); return its events."""
    match move:
        case ChangeState(to_state=to_state, because=because, attention=attention):
            if attention:
                order.attention_reason = attention
            return [event_state_changed(order, to_state, actor=actor, reason=because + why, stripe_ids=ids)]
        case RecordRefunded(total_cents=total, because=because):
            sent_back = max(0, order.amount_refunded_cents - total)
            order.amount_refunded_cents = total
            return [event_refund_recorded(order, actor=actor, total_cents=total, currency=order.currency,
                                          reason=because + why, sent_back_cents=sent_back, stripe_ids=ids)]
        case Activate():
            events = []
            _activate(order, pi, actor=actor, events=events, why=why, ids=ids)
            return events
        case Revoke(why=revoked_because):
            _revoke_entitlement(order, revoked_because)
        case OweRefundEmail(default_reason=default_reason):
            if not order.refund_reason:
                order.refund_reason = default_reason
            if not order.emails.filter(kind=EmailKind.REFUND).exists():
                _owe_once(order, EmailKind.REFUND, pi)
        case AlertDispute():
            signals.attention(kind="dispute", key=f"dispute:{order.id}", order=order,
                              summary=f"{order.reference}: the customer's bank disputed {order.paid_display}")
        case AlertRefundSentBack(sent_back_cents=sent_back, total_cents=total):
            amount = format_money(sent_back, order.paid_currency)
            signals.attention(
                kind="refund_failed", key=f"refund-sent-back:{order.id}:{total}", order=order,
                summary=f"{order.reference}: the customer's bank sent back {amount} of the refund",
                details=(f"Stripe marked the refund failed and holds {amount} again; {order.email} has not "
                         "received it. Contact them and return it another way (a new refund to the same card "
                         "will most likely come back too). Their access stays ended."))
        case HoldMoney():
            return [_hold_money(order, actor=actor, ids=ids, pi=pi)]
    return []


def _record_payment_status(order: Order, pi) -> bool:
    """Keep Stripe's status on the order, and since when we know it (for the sweep's clock).

    The first time we see a PaymentIntent, it has been in its status at most since Stripe created
    it; after that, since the settle that saw it change.
    """
    if pi.status == order.payment_status:
        return False
    if order.payment_status or not pi.get("created"):
        order.payment_status_at = timezone.now()
    else:
        order.payment_status_at = datetime.fromtimestamp(pi.created, tz=UTC)
    order.payment_status = pi.status
    return True


# What settle copies from Stripe's PaymentIntent and charge onto the order.
PAYMENT_FACTS = ["paid_at", "amount_received_cents", "received_currency", "stripe_charge_id", "card_brand",
                 "card_last4", "statement_descriptor"]


def _record_payment_facts(order: Order, pi, charge) -> bool:
    """Copy what Stripe knows about the payment onto the order; True if anything changed.

    The amount is the PaymentIntent's amount_received, in Stripe's currency: what the customer's
    bank sees, and so what every page and email says, whatever the order asked for.
    """
    before = [getattr(order, field) for field in PAYMENT_FACTS]
    if order.paid_at is None:
        created = charge.created if charge else pi.created
        order.paid_at = datetime.fromtimestamp(created, tz=UTC)
    order.amount_received_cents = pi.amount_received
    order.received_currency = pi.currency
    if charge is not None:
        order.stripe_charge_id = charge.id
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        order.card_brand = card.get("brand") or order.card_brand
        order.card_last4 = card.get("last4") or order.card_last4
        order.statement_descriptor = (charge.get("calculated_statement_descriptor")
                                      or order.statement_descriptor)[:30]
    return before != [getattr(order, field) for field in PAYMENT_FACTS]


def _record_refunds(order: Order, charge):
    """Keep one OrderRefund per refund Stripe lists on the charge (when the charge came with them)."""
    refunds = charge.get("refunds")
    if not refunds or isinstance(refunds, str):
        return
    rows = [OrderRefund(order=order, stripe_refund_id=r.id, amount_cents=r.amount, currency=r.currency,
                        status=r.status, created_at=datetime.fromtimestamp(r.created, tz=UTC))
            for r in refunds.get("data") or []]
    if rows:
        OrderRefund.objects.bulk_create(rows, update_conflicts=True, unique_fields=["stripe_refund_id"],
                                        update_fields=["amount_cents", "status"])
