"""Stripe events (the webhook's fast path)."""

from billing import selectors
from billing.services.settle import order_settle, settle_answer_wait, settle_answered_mark, settle_turn_take
from billing.stripe_events import STRIPE_EVENTS_ALSO_ACTED_ON, STRIPE_EVENTS_USED

# The webhook view (billing/webhooks.py) checks each delivery and hands the event here. An event is
# a nudge: the order it concerns is settled from Stripe's own word, as the customer's return does,
# whichever comes first; the other then finds the order settled and costs one read. Mirroring
# Stripe's objects is the pull sync's job (billing/mirror.py, every minute, through dj-stripe).
# docs/decisions/0009-webhooks-settle-the-mirror-pulls.md weighs this.


# How long a webhook waits for another path's read of Stripe before making its own: a settle takes
# tens of milliseconds. Short, because a waiting webhook holds a web thread the customers need too.
WAIT_FOR_OTHER_SETTLE = 1.0


def stripe_event_receive(*, event: dict) -> str:
    """Act on one verified Stripe event; returns what was done, for the log.

    Raises StripeError when Stripe cannot be asked now: the view answers 503 and Stripe delivers
    the event again later (and the sweep settles the order meanwhile if it can).
    """
    if event.get("type") not in STRIPE_EVENTS_USED and event.get("type") not in STRIPE_EVENTS_ALSO_ACTED_ON:
        return "not an event Backstop uses"
    order = selectors.order_for_stripe_object(event["data"]["object"])
    if order is None:
        # Not ours (another product on the account), or our order row is missing (a restore from
        # a backup): the pull sync mirrors the charge and the sweep adopts it.
        return "no order; left to the sweep"
    if selectors.stripe_event_is_old_news(event, order):
        return f"{order.reference} already settled"
    if not settle_turn_take(order_id=order.id) and settle_answer_wait(order_id=order.id, seconds=WAIT_FOR_OTHER_SETTLE):
        # Another path (the payment's other event, the customer's return) has just read Stripe for
        # this order: if that made this event old news, it needs no read of its own.
        now = selectors.order_for_stripe_object(event["data"]["object"])
        if now is not None and selectors.stripe_event_is_old_news(event, now):
            return f"{order.reference} settled by another path a moment ago"
    order = order_settle(order_id=order.id, actor="webhook", reason=f"Stripe event {event['type']} {event['id']}",
                         order=order)
    settle_answered_mark(order_id=order.id)
    return f"{order.reference} settled: {order.state}"
