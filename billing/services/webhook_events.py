"""Stripe events (the webhook's fast path)."""

from billing import selectors
from billing.services.settle import order_settle
from billing.stripe_events import STRIPE_EVENTS_USED

# The webhook view (billing/webhooks.py) checks each delivery and hands the event here. An event is
# a nudge: the order it concerns is settled from Stripe's own word, as the customer's return does,
# whichever comes first; the other then finds the order settled and costs one read. Mirroring
# Stripe's objects is the pull sync's job (billing/mirror.py, every minute, through dj-stripe).
# docs/decisions/0009-webhooks-settle-the-mirror-pulls.md weighs this.


def stripe_event_receive(*, event: dict) -> str:
    """Act on one verified Stripe event; returns what was done, for the log.

    Raises StripeError when Stripe cannot be asked now: the view answers 503 and Stripe delivers
    the event again later (and the sweep settles the order meanwhile if it can).
    """
    if event.get("type") not in STRIPE_EVENTS_USED:
        return "not an event Backstop uses"
    order = selectors.order_for_stripe_object(event["data"]["object"])
    if order is None:
        # Not ours (another product on the account), or our order row is missing (a restore from
        # a backup): the pull sync mirrors the charge and the sweep adopts it.
        return "no order; left to the sweep"
    if selectors.stripe_event_is_old_news(event, order):
        return f"{order.reference} already settled"
    order = order_settle(order_id=order.id, actor="webhook", reason=f"Stripe event {event['type']} {event['id']}")
    return f"{order.reference} settled: {order.state}"
