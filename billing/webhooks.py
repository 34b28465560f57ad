"""Stripe events, received and mirrored by dj-stripe, nudge the order they concern.

Receivers run inside dj-stripe's webhook transaction, so they only find the order and schedule
`order_settle` for after commit: no Stripe call, no order lock inside the webhook. If the worker
is down, the customer's status page settles the order all the same (and, once built, the sweep).
"""

import logging

from djstripe.event_handlers import djstripe_receiver

from billing.models import Order
from billing.queue import enqueue_after_commit
from billing.stripe_events import SETTLING_EVENTS

logger = logging.getLogger(__name__)



def order_for_stripe_object(obj: dict) -> Order | None:
    """The order behind a PaymentIntent or Charge payload: by the PaymentIntent id we stored,
    else by the reference in our metadata (never by the row id in it: after a restore from a
    backup, that id may belong to another order)."""
    pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(pi_id, dict):
        pi_id = pi_id.get("id")
    if pi_id:
        order = Order.objects.filter(stripe_payment_intent_id=pi_id).only("id").first()
        if order is not None:
            return order
    reference = (obj.get("metadata") or {}).get("reference")
    if reference:
        return Order.objects.filter(reference=reference).only("id").first()
    return None


@djstripe_receiver(SETTLING_EVENTS)
def settle_order_on_stripe_event(sender, event, **kwargs):
    obj = event.data.get("object") or {}
    if obj.get("object") == "dispute":
        obj = {"payment_intent": obj.get("payment_intent"), "metadata": {}}
    order = order_for_stripe_object(obj)
    if order is None:
        # Not ours (another product on the account), or our order row is missing (a restore from
        # a backup): the sweep joins the mirrored charge to orders and adopts it.
        logger.info("Stripe event %s (%s) matches no order", event.id, event.type)
        return
    enqueue_after_commit("billing.tasks.settle_order", order.id, "webhook", f"Stripe event {event.type} {event.id}",
                         task_name=f"settle-{order.id}")
