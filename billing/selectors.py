"""Billing reads: what views, the API and emails show. No writes here."""

from dataclasses import asdict, dataclass

import stripe
from django.db import connection
from django.utils import timezone
from djstripe.models import Charge, PaymentIntent

from billing.models import Order, OrderState

S = OrderState


@dataclass(frozen=True)
class CustomerStatus:
    """What the customer is told about an order: honest about money, in plain words."""

    code: str  # not_charged | checking | failed | processing | activating | active | refunded | attention
    charged: bool
    headline: str
    message: str
    final: bool  # nothing will change without the customer or support doing something
    # Money is held without service: the customer may take it back now instead of waiting.
    refund_offer: bool = False

    def as_dict(self):
        return asdict(self)


def order_customer_status(order: Order, *, checked: bool = True) -> CustomerStatus:
    """What we tell the customer. `checked` says whether the order reflects Stripe's word as of
    a moment ago; when it does not and money may have moved, we say we are checking."""
    amount = order.amount_display
    if order.held_since is not None and order.state not in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED):
        deadline = f"{timezone.localtime(order.refund_deadline_at):%B %-d at %H:%M %Z}"
        return CustomerStatus("attention", True, "Payment received — we're finishing your order",
                              f"We have your payment of {amount}, and your account is being set up. If it "
                              f"isn't ready by {deadline}, we refund you in full automatically — you don't "
                              "need to ask. You won't be charged again.", final=False, refund_offer=True)
    if not checked and order_needs_settle(order) and order.state != S.PAID:
        return CustomerStatus("checking", False, "Checking your payment with our payment provider",
                              "We're asking Stripe, our payment provider, whether your payment went through. "
                              "This takes a few seconds and this page updates by itself. You will never be "
                              "charged twice for this order.", final=False)
    if order.state == S.PENDING:
        return CustomerStatus("not_charged", False, "Not charged yet",
                              f"We have not taken any money. Your order is ready for payment of {amount}.",
                              final=False)
    if order.state == S.FAILED:
        return CustomerStatus("failed", False, "Payment didn't go through — you have not been charged",
                              f"{order.attention_reason or 'The card was declined.'} "
                              "You can try again with the same or another card.", final=True)
    if order.state == S.PROCESSING:
        return CustomerStatus("processing", False, "Confirming your payment",
                              "Your bank is confirming the payment. This usually takes a few seconds; "
                              "you will not be charged twice.", final=False)
    if order.state == S.PAID:
        return CustomerStatus("activating", True, "Payment received — activating your account",
                              f"We have your payment of {amount}. Your account is being switched on; "
                              "this usually takes a few seconds.", final=False)
    if order.state == S.ACTIVE:
        until = order.entitlement.ends_at if hasattr(order, "entitlement") else None
        when = f" until {timezone.localtime(until):%B %-d, %Y}" if until else ""
        return CustomerStatus("active", True, "You're all set",
                              f"Payment of {amount} received and your {order.plan.name} plan is "
                              f"active{when}. We've emailed your confirmation and a sign-in link.",
                              final=True)
    if order.state == S.REFUND_PENDING:
        return CustomerStatus("refunding", True, "Refund on its way",
                              f"We have refunded {amount}. Banks usually show it within 5–10 days.",
                              final=True)
    if order.state == S.REFUNDED:
        return CustomerStatus("refunded", False, "Refunded",
                              f"Your payment of {amount} has been refunded in full. Banks usually show "
                              "it within 5–10 days.", final=True)
    if order.state == S.CANCELED:
        return CustomerStatus("canceled", False, "Order canceled — you have not been charged",
                              "This order was canceled before any payment was taken.", final=True)
    if order.state == S.DISPUTED:
        return CustomerStatus("attention", True, "Your bank has asked about this payment",
                              "Your bank opened a dispute about this payment, so we are looking at it with "
                              "them. Your access carries on meanwhile. If you did not mean to dispute it, "
                              "reply to your confirmation email and we will sort it out together.",
                              final=True)
    # needs_review: money may be held and a person is on it.
    return CustomerStatus("attention", order.paid_at is not None, "We're looking at your order",
                          "Something needs a human check before we can finish. If you were charged, "
                          "your money is safe: we will either activate your account or refund you in "
                          "full, and email you within one business day.", final=False)


def order_needs_settle(order: Order) -> bool:
    """Is Stripe possibly ahead of us? (Only then is asking Stripe worth a round-trip.)"""
    return bool(order.stripe_payment_intent_id) and order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID)


def order_for_stripe_object(obj: dict) -> Order | None:
    """The order behind a Stripe object from an event (PaymentIntent, Charge, Refund, Dispute):
    by the PaymentIntent id we stored, else by the reference in our metadata (never by the row id
    in it: after a restore from a backup, that id may belong to another order)."""
    pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(pi_id, dict):
        pi_id = pi_id.get("id")
    fields = ("id", "state", "stripe_payment_intent_id", "stripe_charge_id")
    if pi_id:
        order = Order.objects.filter(stripe_payment_intent_id=pi_id).only(*fields).first()
        if order is not None:
            return order
    reference = (obj.get("metadata") or {}).get("reference")
    if reference:
        return Order.objects.filter(reference=reference).only(*fields).first()
    return None


# Events that can only confirm what an order past its payment already shows: Stripe never takes a
# succeeded PaymentIntent back to processing or failure, and its charge stays the same charge.
_CONFIRMING_EVENTS = {
    "payment_intent.succeeded", "payment_intent.processing", "payment_intent.requires_action",
    "payment_intent.payment_failed", "charge.succeeded", "charge.failed",
}
_PAST_PAYMENT = {OrderState.ACTIVE, OrderState.REFUND_PENDING, OrderState.REFUNDED, OrderState.DISPUTED}


def stripe_event_is_old_news(event: dict, order: Order) -> bool:
    """True when the event cannot move the order: it confirms a payment the order already
    settled. Refunds and disputes are never old news here; settle weighs them."""
    if event.get("type") not in _CONFIRMING_EVENTS or order.state not in _PAST_PAYMENT:
        return False
    obj = event["data"]["object"]
    if obj.get("object") == "payment_intent":
        return obj.get("id") == order.stripe_payment_intent_id
    if obj.get("payment_intent") != order.stripe_payment_intent_id:
        return False
    return obj.get("status") == "failed" or obj.get("id") == order.stripe_charge_id


def payment_intent_from_mirror(payment_intent_id: str):
    """The PaymentIntent as dj-stripe last mirrored it, when it can be trusted without Stripe.

    The pull sync keeps the mirror up to about a minute behind Stripe, so only final states are
    trusted (succeeded with its charge mirrored, or canceled), which Stripe never leaves: a stale
    "requires_payment_method" must never move an order backwards, so anything else returns None.
    """
    data = PaymentIntent.objects.filter(id=payment_intent_id).values_list("stripe_data", flat=True).first()
    if not data or data.get("status") not in ("succeeded", "canceled"):
        return None
    data = dict(data)
    if data["status"] == "succeeded":
        charge_id = data.get("latest_charge")
        charge_id = charge_id.get("id") if isinstance(charge_id, dict) else charge_id
        charge = None
        if charge_id:
            charge = Charge.objects.filter(id=charge_id).values_list("stripe_data", flat=True).first()
        if not charge:
            return None
        data["latest_charge"] = charge
    return stripe.convert_to_stripe_object(data)


# --- The sweep's questions, asked of the mirror and the orders together ------------------------
# Plain SQL that PostgreSQL and SQLite (3.38+, for ->>) both run: one statement per question,
# whatever the number of orders, instead of one Stripe call per order.

# Orders that are not finished while the mirror shows their payment succeeded (or whose money
# is held for review without the customer having been told yet). This reads every order in
# those states every run, failed and canceled ones included, which pile up with history: each
# costs one probe of backstop_charge_succeeded_cover_idx, about 2 µs (docs/reconcile.md#benchmark).
# `open_orders` keeps those with any succeeded charge; the CASE around EXISTS is deliberate: it
# keeps PostgreSQL from turning the probe into a join that reads every charge, which its cost
# model can prefer once open orders are a couple of percent of all orders, and which was 6-10
# times slower at a million. Then the exact test on those few orders.
_OPEN_ORDERS_BEHIND_STRIPE = """
WITH open_orders AS MATERIALIZED (
  SELECT o.id, o.reference, o.state, o.stripe_payment_intent_id, o.held_since
  FROM billing_order o
  WHERE o.state IN ('pending', 'processing', 'failed', 'paid', 'canceled', 'needs_review')
    AND CASE WHEN EXISTS (SELECT 1 FROM djstripe_charge s
                          WHERE s.payment_intent_id = o.stripe_payment_intent_id AND s.status = 'succeeded')
             THEN 1 ELSE 0 END = 1
)
SELECT o.id, o.reference, o.state, c.id, c.payment_intent_id
FROM open_orders o
JOIN djstripe_charge c ON c.payment_intent_id = o.stripe_payment_intent_id
WHERE c.status = 'succeeded'
  AND c.created < %s
  AND (o.state IN ('pending', 'processing', 'failed', 'paid', 'canceled')
       OR (o.state = 'needs_review' AND o.held_since IS NULL
           AND CAST(c.stripe_data -> 'refunded' AS TEXT) <> 'true'))
ORDER BY c.created
"""

# Succeeded Backstop charges (our reference in the metadata) whose order is missing, or that
# Stripe shows refunded, disputed or for another amount than the order says. Limited to the
# mirror rows that changed since `window_start` (the pull sync touches djstripe_updated), unless
# a full scan is asked for.
#
# In two steps, because reading stripe_data is what costs (about 10 µs a row: it is TOASTed,
# so each -> is a lookup plus a decompression) and a million rows must not all be read:
# 1. `candidates` reads indexes only (billing/migrations/0003_mirror_indexes.py): a charge with
#    no order, an order that records a refund, a currency or amount that differs (the amount
#    from dj-stripe's own `amount` column, which it fills from the same object, in major units:
#    Stripe's integer / 100 for every currency), or a charge that is refunded or disputed at all
#    (backstop_charge_touched_idx). Every row the exact test below can report is among them.
# 2. The exact test, on the candidates only, reading stripe_data as before, cheap columns first.
# MATERIALIZED keeps the planner from merging the two steps (PostgreSQL 12+, SQLite 3.35+).
_BACKSTOP_CHARGES_OUT_OF_STEP = """
WITH candidates AS MATERIALIZED (
  SELECT c.djstripe_id
  FROM djstripe_charge c
  LEFT JOIN billing_order o ON o.stripe_payment_intent_id = c.payment_intent_id
  LEFT JOIN djstripe_charge t ON t.payment_intent_id = c.payment_intent_id
    AND t.status = 'succeeded'
    AND (CAST(t.stripe_data -> 'disputed' AS TEXT) = 'true'
         OR CAST(t.stripe_data -> 'refunded' AS TEXT) = 'true'
         OR CAST(t.stripe_data ->> 'amount_refunded' AS TEXT) <> '0')
  WHERE c.status = 'succeeded'
    AND c.payment_intent_id IS NOT NULL
    {window}
    AND (o.stripe_payment_intent_id IS NULL
         OR o.amount_refunded_cents <> 0
         OR c.currency <> o.currency
         OR CAST(ROUND(c.amount * 100) AS INTEGER) <> o.amount_cents
         OR t.payment_intent_id IS NOT NULL)
)
SELECT c.id, c.payment_intent_id, c.metadata ->> 'reference', o.id, o.state,
  CASE
    WHEN o.id IS NULL THEN 'adopt'
    WHEN CAST(c.stripe_data -> 'disputed' AS TEXT) = 'true' AND o.state IN ('paid', 'active') THEN 'dispute'
    WHEN CAST(c.stripe_data ->> 'amount' AS INTEGER) <> o.amount_cents
         OR c.currency <> o.currency THEN 'mismatch'
    ELSE 'refund'
  END
FROM djstripe_charge c
LEFT JOIN billing_order o ON o.stripe_payment_intent_id = c.payment_intent_id
WHERE c.djstripe_id IN (SELECT djstripe_id FROM candidates)
  AND c.status = 'succeeded'
  AND c.payment_intent_id IS NOT NULL
  AND c.metadata ->> 'reference' LIKE 'BK-%%'
  AND (o.id IS NULL
       OR (o.state IN ('paid', 'active') AND CAST(c.stripe_data -> 'disputed' AS TEXT) = 'true')
       OR (o.state NOT IN ('needs_review', 'refund_pending', 'refunded')
           AND (c.currency <> o.currency
                OR (CAST(ROUND(c.amount * 100) AS INTEGER) <> o.amount_cents
                    AND CAST(c.stripe_data ->> 'amount' AS INTEGER) <> o.amount_cents)))
       OR (o.state NOT IN ('refunded', 'refund_pending') AND CAST(c.stripe_data -> 'refunded' AS TEXT) = 'true')
       -- o.amount_refunded_cents <> min(Stripe's amount_refunded, o.amount_cents), reading it once
       OR NOT ((CAST(c.stripe_data ->> 'amount_refunded' AS INTEGER) = o.amount_refunded_cents
                AND o.amount_refunded_cents <= o.amount_cents)
               OR (CAST(c.stripe_data ->> 'amount_refunded' AS INTEGER) > o.amount_cents
                   AND o.amount_refunded_cents = o.amount_cents)))
ORDER BY c.created
"""


@dataclass(frozen=True)
class Discrepancy:
    case: str  # settle | hold | adopt | refund | dispute | mismatch
    charge_id: str
    payment_intent_id: str
    reference: str
    order_id: int | None
    order_state: str | None


def orders_behind_stripe(*, charged_before) -> list[Discrepancy]:
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_ORDERS_BEHIND_STRIPE, [charged_before])
        return [Discrepancy("hold" if state == S.NEEDS_REVIEW else "settle", charge, pi, reference, order_id, state)
                for order_id, reference, state, charge, pi in cursor.fetchall()]


def backstop_charges_out_of_step(*, changed_since=None) -> list[Discrepancy]:
    window = "" if changed_since is None else "AND c.djstripe_updated >= %s"
    with connection.cursor() as cursor:
        cursor.execute(_BACKSTOP_CHARGES_OUT_OF_STEP.format(window=window),
                       [] if changed_since is None else [changed_since])
        return [Discrepancy(case, charge, pi, reference or "", order_id, state)
                for charge, pi, reference, order_id, state, case in cursor.fetchall()]
