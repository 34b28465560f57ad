"""Refunds, and accepting the amount Stripe took: the two ways a person ends money held on an order
(docs/reconcile.md)."""

import logging
from collections.abc import Callable

from django.db import transaction

from billing import locks, signals, stripe_api
from billing.errors import BillingError, RefundFailed
from billing.models import Order, OrderEvent, OrderState
from billing.money import format_money
from billing.services.entitlements import _activate, _revoke_entitlement
from billing.services.history import (
    event_accepted_amount,
    event_refund_accepted,
    event_refund_failed,
    event_refund_requested,
    event_returned_another_way,
)
from billing.services.settle import _belongs_to, _record_payment_facts, order_settle
from config.failpoints import failpoint

logger = logging.getLogger(__name__)
S = OrderState

# Where a customer has paid and may be refunded by us. A disputed payment is not: Stripe refuses
# to refund it, and the bank's process decides.
REFUNDABLE = {S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.REFUND_PENDING}


def order_refund(*, order_id: int, actor: str, reason: str, amount_cents: int | None = None,
                 claim: Callable[[], None] | None = None, user=None) -> Order:
    """Give the customer's money back: all that is left of it, or `amount_cents` of it.

    The one way Backstop refunds (support, the customer's own "refund me now", the held-money
    deadline, the sweep). Safe to repeat and to race: the Stripe idempotency key is made of the
    order, the amount already refunded and the amount, so a double submit or two people at once
    make one refund, while a deliberate second partial refund gets a key of its own. A full
    refund ends access at once and the order waits in refund_pending until Stripe shows the
    money returned; settle then records it and owes the customer one refund email saying why.
    """
    order = Order.objects.get(pk=order_id)
    if not order.stripe_payment_intent_id:
        raise BillingError(f"Order {order.reference} has no payment to refund.")
    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    charge = pi.get("latest_charge")
    if pi.status != "succeeded" or not charge or isinstance(charge, str):
        raise BillingError(f"Stripe shows no completed payment to refund for {order.reference}.")
    remaining = pi.amount_received - charge.amount_refunded
    if remaining <= 0:
        return order_settle(order_id=order_id, actor=actor, user=user, reason="already refunded", payment_intent=pi)
    amount = remaining if amount_cents is None else amount_cents
    if not 0 < amount <= remaining:
        raise BillingError(f"A refund for {order.reference} must be between "
                           f"{format_money(1, pi.currency)} and {format_money(remaining, pi.currency)}.")
    full = amount == remaining
    money = format_money(amount, pi.currency)
    ids = {"payment_intent": pi.id, "charge": charge.id}

    with transaction.atomic():
        order = locks.order_lock(order_id)
        # Everything left was asked for, and another path (a colleague, the customer's own button)
        # refunded it between our read of Stripe and this lock: that is this refund, done, told as
        # if we had read Stripe a moment later. A support form's claim still runs first, and refuses
        # it naming what changed since the person loaded the case.
        refunded_meanwhile = full and order.state == S.REFUNDED
        if order.state not in REFUNDABLE and not refunded_meanwhile:
            raise BillingError(f"Order {order.reference} is {order.get_state_display().lower()}; "
                               "it cannot be refunded from here.")
        if claim is not None:
            claim()
        if full and order.state not in (S.REFUND_PENDING, S.REFUNDED):
            order.refund_reason = reason[:500]
            event = event_refund_requested(order, actor=actor, user=user, amount_cents=amount,
                                           currency=pi.currency, reason=reason, full=True, stripe_ids=ids)
            order.save()
            event.save()
            _revoke_entitlement(order, "refund requested")
        elif not full:
            event_refund_requested(order, actor=actor, user=user, amount_cents=amount, currency=pi.currency,
                                   reason=reason, full=False, stripe_ids=ids)
    if refunded_meanwhile:
        return order_settle(order_id=order_id, actor=actor, user=user, reason="already refunded")

    try:
        refund = stripe_api.refund_create(
            idempotency_key=f"backstop-order-{order.public_id}-refund-{charge.amount_refunded}-{amount}",
            payment_intent=pi.id,
            amount=amount,
            reason="requested_by_customer",
            metadata={"order_id": str(order.id), "reference": order.reference, "actor": actor[:100]},
        )
    except stripe_api.StripeError as exc:
        logger.warning("Refund of %s for %s failed: %s", money, order.reference, exc)
        event_refund_failed(order, actor=actor, user=user, amount_cents=amount, currency=pi.currency,
                            error=str(exc), stripe_ids=ids)
        signals.attention(kind="refund_failed", key=f"refund-failed:{order.id}:{charge.amount_refunded}",
                    order=order, summary=f"{order.reference}: refund of {money} not confirmed by Stripe",
                    details=str(exc))
        raise RefundFailed(f"Stripe did not confirm the refund for {order.reference}; "
                           "it will be retried. Nothing was refunded twice.") from exc
    failpoint("refund.after_stripe_accepted")
    event_refund_accepted(order, actor=actor, user=user, amount_cents=amount, currency=pi.currency,
                          status=refund.status, stripe_ids={**ids, "refund": refund.id})
    return order_settle(order_id=order_id, actor=actor, user=user, reason="refund issued")


def order_accept_amount(*, order_id: int, actor: str, reason: str,
                        claim: Callable[[], None] | None = None, user=None) -> Order:
    """Accept what Stripe took when it differs from what the order asked ($248 for a $249 order):
    the order's price becomes Stripe's amount and the plan is granted for it, with one confirmation
    email; the money held without service is no longer held. A person decides this (support, with
    the refund right), with a reason on the timeline; the other way out is a refund.

    Reads Stripe first, then locks and re-checks; safe to repeat (an order already accepted is
    returned as it is). `claim` runs under the lock, as order_refund's does.
    """
    if not reason.strip():
        raise BillingError("Say why the amount Stripe took is accepted, for the order's history.")
    order = Order.objects.get(pk=order_id)
    if not order.stripe_payment_intent_id:
        raise BillingError(f"Order {order.reference} has no payment to accept.")
    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    charge = pi.get("latest_charge")
    if pi.status != "succeeded" or not charge or isinstance(charge, str) or not _belongs_to(order, pi):
        raise BillingError(f"Stripe shows no completed payment of {order.reference} to accept.")
    if charge.amount_refunded or charge.get("disputed"):
        raise BillingError(f"The payment of {order.reference} was refunded or disputed since; nothing to accept.")
    taken = format_money(pi.amount_received, pi.currency)
    ids = {"payment_intent": pi.id, "charge": charge.id}

    with transaction.atomic():
        order = locks.order_lock(order_id)
        if claim is not None:
            claim()
        if order.state == S.ACTIVE and order.events.filter(kind=OrderEvent.Kind.ACCEPTED_AMOUNT).exists():
            return order  # accepted a moment ago (a retry)
        if order.state != S.NEEDS_REVIEW or (order.amount_cents, order.currency) == (pi.amount_received,
                                                                                    pi.currency):
            raise BillingError(f"Order {order.reference} is {order.get_state_display().lower()} and Stripe took "
                               "what it asked: Accept is for an amount Stripe took differently.")
        asked_cents, asked_currency = order.amount_cents, order.currency
        _record_payment_facts(order, pi, charge)
        order.amount_cents, order.currency = pi.amount_received, pi.currency
        order.attention_reason = ""
        events = [event_accepted_amount(order, actor=actor, user=user, reason=reason, asked_cents=asked_cents,
                                        asked_currency=asked_currency, stripe_ids=ids)]
        _activate(order, pi, actor=actor, events=events, why=f" (for the {taken} Stripe took)", ids=ids)
        for event in events:
            event.actor_user = user
        order.save()
        OrderEvent.objects.bulk_create(events)
    return order


def order_returned_another_way(*, order_id: int, actor: str, how: str, claim: Callable[[], None] | None = None,
                               user=None) -> Order:
    """A person returned to the customer, outside Stripe (a bank transfer), the refund their bank
    sent back (docs/reconcile.md#refunds): recorded with how, the order off the queue, the team's
    alert resolved. Stripe is not asked: the money left another way. `claim` runs under the lock."""
    if not how.strip():
        raise BillingError("Say how the money was returned (a bank transfer, a cheque), for the order's history.")
    with transaction.atomic():
        order = locks.order_lock(order_id)
        if claim is not None:
            claim()
        amount = order.refund_sent_back_cents
        if not amount:
            raise BillingError(f"Order {order.reference} has no refund sent back by the bank to return.")
        order.returned_another_way_cents += amount
        event = event_returned_another_way(order, actor=actor, user=user, amount_cents=amount, how=how)
        order.save(update_fields=["returned_another_way_cents"])
        event.save()
        signals.attention_over.send(sender=Order, order=order, kinds=["refund_failed"])
    return order
