"""Settle: the one way an order moves on after checkout. Read Stripe's PaymentIntent, lock the
order, re-read it and converge it on Stripe's truth (docs/decisions/0002-settle-reads-stripe-then-locks.md)."""

import logging
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from billing import locks, signals, stripe_api
from billing.models import Order, OrderEvent, OrderRefund, OrderState, OutboundEmail
from billing.money import format_money
from billing.services.entitlements import _activate, _revoke_entitlement
from billing.services.held import _hold_money
from billing.services.history import _move
from billing.services.outbox import _owe_once
from config.failpoints import failpoint

logger = logging.getLogger(__name__)
S = OrderState

# Stripe statuses in which money is taken or on its way (a bank debit, an authorised card).
MONEY_IN_FLIGHT = ("processing", "requires_capture")
# Stripe statuses in which nothing was taken and the customer still has to act: the bank's check
# (3-D Secure), a card, a confirmation. The sweep cancels these after ABANDONED_PAYMENT_AFTER.
UNFINISHED_PAYMENT = ("requires_action", "requires_payment_method", "requires_confirmation")


def order_settle(*, order_id: int, actor: str, reason: str = "", payment_intent=None) -> Order:
    """Bring the order in line with what Stripe says, and return it.

    Any path may call this any number of times, concurrently: the webhook, the customer's
    status page, the sweep, support. It reads Stripe's PaymentIntent (unless the caller passes a
    fresh one), then locks the order, re-reads it and applies only the moves the truth requires.
    Paid orders become active with exactly one entitlement and one confirmation email; a
    mismatch between what Stripe took and what the order asked for goes to needs_review.
    """
    order = Order.objects.only("id", "state", "stripe_payment_intent_id").get(pk=order_id)
    if not order.stripe_payment_intent_id:
        return Order.objects.get(pk=order_id)  # nothing in Stripe to settle against yet
    if payment_intent is None:
        payment_intent = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    failpoint("settle.after_stripe_read")

    with transaction.atomic():
        order = locks.order_lock(order_id)
        failpoint("settle.after_lock")
        if actor == "webhook":
            failpoint("webhook.inside_settle")  # only the webhook's settle, not the customer's or the sweep's
        _converge(order, payment_intent, actor=actor, reason=reason)
        failpoint("settle.before_commit")
    return order


def _belongs_to(order: Order, pi) -> bool:
    """Does this PaymentIntent say it pays for this order?

    The reference is the identity that survives a database restored from a backup (row ids are
    reused after a restore; references are random and unique), so it wins over the row id.
    """
    metadata = pi.metadata or {}
    if metadata.get("reference"):
        return metadata["reference"] == order.reference
    return metadata.get("order_id") == str(order.id)


def _converge(order: Order, pi, *, actor: str, reason: str):
    charge = pi.get("latest_charge") if pi.get("latest_charge") else None
    if isinstance(charge, str):
        # The caller passed an unexpanded PaymentIntent; the charge facts are one call away, but
        # we are inside the lock now, so act on the status alone and let the next settle fill in.
        charge = None
    ids = {"payment_intent": pi.id, **({"charge": charge.id} if charge else {})}
    why = f" ({reason})" if reason else ""
    events = []
    fully_refunded = False

    def move(to_state, because):
        events.append(_move(order, to_state, actor=actor, reason=because + why, stripe_ids=ids))

    if not _belongs_to(order, pi):
        if order.state != S.NEEDS_REVIEW:
            order.attention_reason = "Stripe payment does not carry this order's reference"
            move(S.NEEDS_REVIEW, order.attention_reason)
    elif pi.status == "succeeded":
        facts_changed = _record_payment_facts(order, pi, charge)
        refunded = charge.amount_refunded if charge else order.amount_refunded_cents
        if refunded != order.amount_refunded_cents:
            order.amount_refunded_cents = refunded
            events.append(OrderEvent(order=order, actor=actor, stripe_ids=ids, reason=(
                f"Stripe shows {format_money(refunded, pi.currency)} refunded in total{why}")[:500]))
        if charge is not None:
            _record_refunds(order, charge)
        fully_refunded = charge is not None and (
            bool(charge.get("refunded")) or charge.amount_refunded >= pi.amount_received)
        if fully_refunded:
            if order.state != S.REFUNDED:
                if order.state in (S.PENDING, S.PROCESSING, S.FAILED):
                    move(S.PAID, "Stripe confirmed the payment")
                move(S.REFUNDED, "Stripe shows the payment fully refunded")
                _revoke_entitlement(order, "refunded")
                if not order.refund_reason:
                    order.refund_reason = "Our team issued this refund."
                if not order.emails.filter(kind=OutboundEmail.Kind.REFUND).exists():
                    _owe_once(order, OutboundEmail.Kind.REFUND, pi)
        elif pi.amount_received != order.amount_cents or pi.currency != order.currency:
            if order.state != S.NEEDS_REVIEW:
                order.attention_reason = (
                    f"Stripe received {format_money(pi.amount_received, pi.currency)}, "
                    f"the order expects {order.amount_display}"
                )
                move(S.NEEDS_REVIEW, order.attention_reason)
        elif order.state in (S.PENDING, S.PROCESSING, S.FAILED):
            move(S.PAID, "Stripe confirmed the payment")
            _activate(order, pi, actor=actor, events=events, why=why, ids=ids)
        elif order.state == S.PAID:
            _activate(order, pi, actor=actor, events=events, why=why, ids=ids)
        elif order.state == S.CANCELED:
            order.attention_reason = "A payment arrived for an order that had been canceled"
            move(S.NEEDS_REVIEW, order.attention_reason)
        # A dispute freezes nothing for the customer yet; it puts the order in front of a person.
        if charge is not None and charge.get("disputed") and order.state in (S.PAID, S.ACTIVE):
            move(S.DISPUTED, "The customer's bank opened a dispute on the payment")
            signals.attention(kind="dispute", key=f"dispute:{order.id}", order=order,
                        summary=f"{order.reference}: the customer's bank disputed {order.paid_display}")
        if facts_changed and not events:
            order.save(update_fields=[*PAYMENT_FACTS, "updated_at"])
    elif pi.status in MONEY_IN_FLIGHT:
        if order.state in (S.PENDING, S.FAILED):
            move(S.PROCESSING, f"Stripe reports the payment as {pi.status.replace('_', ' ')}")
    elif pi.status in UNFINISHED_PAYMENT:
        # Nothing was taken: the customer still has to act (the bank's check, a card), so the order
        # is unpaid, never "processing" (docs/reconcile.md#abandoned-payment-attempts).
        error = pi.get("last_payment_error")
        if error and pi.status != "requires_action" and order.state in (S.PENDING, S.PROCESSING):
            order.attention_reason = (error.get("message") or "The card was declined")[:500]
            move(S.FAILED, f"Payment attempt failed: {order.attention_reason}")
        elif pi.status == "requires_action" and order.state in (S.PROCESSING, S.FAILED):
            move(S.PENDING, "The bank asked the customer to confirm the payment; nothing was taken")
        elif not error and order.state in (S.PROCESSING, S.FAILED):
            move(S.PENDING, "Waiting for the customer to pay")
    elif pi.status == "canceled" and order.state in (S.PENDING, S.PROCESSING, S.FAILED):
        move(S.CANCELED, f"Stripe canceled the payment ({pi.get('cancellation_reason') or 'no reason'})")

    if order.state in (S.PAID, S.ACTIVE) and pi.status != "succeeded":
        order.attention_reason = f"Order is {order.state} but Stripe says {pi.status}"
        move(S.NEEDS_REVIEW, order.attention_reason)

    # Money held without service: tell the customer now, before they have to ask, and start the
    # clock after which they are refunded without asking.
    held = order.state == S.NEEDS_REVIEW and pi.status == "succeeded" and not fully_refunded
    if held and order.held_since is None:
        events.append(_hold_money(order, actor=actor, ids=ids, pi=pi))

    status_seen = _record_payment_status(order, pi)
    if events:
        order.save()
        OrderEvent.objects.bulk_create(events)
    elif status_seen:
        order.save(update_fields=["payment_status", "payment_status_at", "updated_at"])


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
