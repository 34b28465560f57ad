"""The Stripe events Backstop uses. Plain data, importable without Django (the demo supervisor
and the load harness subscribe the emulator's endpoint to exactly these)."""

# What to select for the endpoint in Stripe: only what moves an order. Every other event would be
# received and stored for nothing; billing/services/webhook_events.py answers any other type without work.
STRIPE_EVENTS_USED = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    # Not charge.succeeded or charge.failed: Stripe sends each with payment_intent.succeeded or
    # payment_intent.payment_failed for the same payment, and settle reads the same PaymentIntent
    # for either. Selected too, they doubled the webhooks of every purchase (issue 21); a lost
    # event is the sweep's to catch either way.
    "charge.refunded",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
]

# Acted on when they arrive all the same: an endpoint set up before issue 21 still selects them.
STRIPE_EVENTS_ALSO_ACTED_ON = ["charge.succeeded", "charge.failed"]
