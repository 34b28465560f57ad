"""The Stripe events Backstop uses. Plain data, importable without Django (the demo supervisor
and the load harness subscribe the emulator's endpoint to exactly these)."""

SETTLING_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "charge.dispute.created",
]
# What to select for the endpoint in Stripe: only what moves an order. Every other event would be
# received, stored and re-fetched by dj-stripe for nothing (most of a purchase's cost under load).
STRIPE_EVENTS_USED = [*SETTLING_EVENTS, "charge.dispute.closed", "charge.refund.updated"]
