"""Billing writes. Views, webhooks, tasks, admin actions and commands call these; nothing else
changes billing state.

The rules every function here keeps:
- Stripe is never called inside a transaction that holds an order lock; we read Stripe first,
  then lock, re-read and decide (so a slow Stripe never blocks another path on the same order).
- Every Stripe mutation carries an idempotency key derived from the order, so repeating any step
  after a crash returns the first result instead of doing the thing twice.
- Every state change goes through `_move`, which refuses transitions the state machine does not
  list; every OrderEvent (billing's, support's, a sign-in's) is written by one `event_*` function
  of history.py with its kind, its facts as data, the actor (or staff actor_user) and a sentence.

One file per family of operations; callers import this package (`from billing import services`,
`services.order_settle(...)`), which re-exports every public name below:
- plans.py: the default plan, our side of the Stripe webhook endpoint.
- checkout.py: order_create, order_latest_purchase, stripe_customer_for, order_prepare_payment.
- checkout_decision.py: checkout_decide: what a submitted checkout leads to, as an outcome the
  view renders (pay, the same payment again, more time, already bought, rate limited, setup failed).
- settle.py: order_settle: reads Stripe, locks, and applies under the lock the moves that
  billing/settle_decision.py decides from the facts alone (pure, property-tested); payment facts,
  status, refunds seen; the settle turn, so paths settling one order at once read Stripe once.
- entitlements.py: the callers of accounts.access (activation, revocation, entitlement_add_days).
- held.py: money held without service (order_hold_money).
- refunds.py: order_refund, order_accept_amount, order_returned_another_way.
- adoption.py: the sweep's cases: order_adopt, orders_cancel_abandoned.
- attempts.py: unfinished payment attempts: order_payment_cancel and the sweep's abandoned ones.
- webhook_events.py: stripe_event_receive, the webhook's fast path.
- history.py: `_move` and one `event_*` function per kind of OrderEvent: the order's timeline.
- outbox.py: billing's side of the outbox (outbox/ owes, sends and retries): once-per-order emails,
  the sent-notes in Stripe, sends and bounces on the timeline.
- self_service.py: status links, the "already yours" notice, buyer details on a receipt.

Modules import downwards only: history and outbox at the bottom, then entitlements and held, then
settle, then everything that settles (checkout, refunds, adoption, attempts, webhook_events,
self_service), and checkout_decision above checkout and self_service.
"""

from billing.services.adoption import (
    ABANDONED_AFTER,
    REFERENCE_PATTERN,
    is_backstop_metadata,
    order_adopt,
    orders_cancel_abandoned,
)
from billing.services.attempts import (
    PAYMENT_CANCELABLE,
    abandoned_payment_after_words,
    order_payment_abandoned_cancel,
    order_payment_cancel,
    orders_with_abandoned_payment,
)
from billing.services.checkout import (
    CHECKOUT_REUSE_WINDOW,
    IDEMPOTENCY_KEY_SAFE_AGE,
    PURCHASED,
    LatestPurchase,
    order_create,
    order_latest_purchase,
    order_prepare_payment,
    stripe_customer_for,
)
from billing.services.checkout_decision import PAYABLE, CheckoutOutcome, CheckoutOutcomeKind, checkout_decide
from billing.services.entitlements import entitlement_add_days
from billing.services.held import order_hold_money
from billing.services.plans import DEFAULT_PLAN, plan_ensure_default, plan_set, stripe_webhook_endpoint_ensure
from billing.services.refunds import REFUNDABLE, order_accept_amount, order_refund, order_returned_another_way
from billing.services.self_service import (
    ALREADY_YOURS_EVERY,
    ALREADY_YOURS_PER_DAY,
    STATUS_LINK_MAX_ORDERS,
    STATUS_LINK_STATES,
    order_already_yours_send,
    order_buyer_details_record,
    order_status_links_send,
)
from billing.services.settle import (
    PAYMENT_FACTS,
    SETTLE_TURN_SECONDS,
    order_settle,
    settle_answer_wait,
    settle_answered,
    settle_answered_mark,
    settle_turn_take,
)
from billing.services.webhook_events import stripe_event_receive
from billing.settle_decision import MONEY_IN_FLIGHT, UNFINISHED_PAYMENT

__all__ = [
    "ABANDONED_AFTER",
    "ALREADY_YOURS_EVERY",
    "ALREADY_YOURS_PER_DAY",
    "CHECKOUT_REUSE_WINDOW",
    "DEFAULT_PLAN",
    "IDEMPOTENCY_KEY_SAFE_AGE",
    "MONEY_IN_FLIGHT",
    "PAYABLE",
    "PAYMENT_CANCELABLE",
    "PAYMENT_FACTS",
    "PURCHASED",
    "REFERENCE_PATTERN",
    "REFUNDABLE",
    "SETTLE_TURN_SECONDS",
    "STATUS_LINK_MAX_ORDERS",
    "STATUS_LINK_STATES",
    "UNFINISHED_PAYMENT",
    "CheckoutOutcome",
    "CheckoutOutcomeKind",
    "LatestPurchase",
    "abandoned_payment_after_words",
    "checkout_decide",
    "entitlement_add_days",
    "is_backstop_metadata",
    "order_accept_amount",
    "order_adopt",
    "order_already_yours_send",
    "order_buyer_details_record",
    "order_create",
    "order_hold_money",
    "order_latest_purchase",
    "order_payment_abandoned_cancel",
    "order_payment_cancel",
    "order_prepare_payment",
    "order_refund",
    "order_returned_another_way",
    "order_settle",
    "order_status_links_send",
    "orders_cancel_abandoned",
    "orders_with_abandoned_payment",
    "plan_ensure_default",
    "plan_set",
    "settle_answer_wait",
    "settle_answered",
    "settle_answered_mark",
    "settle_turn_take",
    "stripe_customer_for",
    "stripe_event_receive",
    "stripe_webhook_endpoint_ensure",
]
