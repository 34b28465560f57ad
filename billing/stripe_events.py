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
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
]
