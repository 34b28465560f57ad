"""The order state machine: every allowed move is listed here; anything else is refused."""

from billing.models import OrderState as S

TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.PROCESSING, S.FAILED, S.PAID, S.CANCELED, S.NEEDS_REVIEW},
    S.PROCESSING: {S.PENDING, S.FAILED, S.PAID, S.CANCELED, S.NEEDS_REVIEW},
    # A declined card leaves the PaymentIntent open: the customer may try another card.
    S.FAILED: {S.PENDING, S.PROCESSING, S.PAID, S.CANCELED, S.NEEDS_REVIEW},
    S.PAID: {S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.DISPUTED, S.NEEDS_REVIEW},
    S.ACTIVE: {S.REFUND_PENDING, S.REFUNDED, S.DISPUTED, S.NEEDS_REVIEW},
    S.REFUND_PENDING: {S.REFUNDED, S.ACTIVE, S.NEEDS_REVIEW},
    S.DISPUTED: {S.ACTIVE, S.REFUNDED, S.NEEDS_REVIEW},
    # Support decides: activate after checking, or refund.
    S.NEEDS_REVIEW: {S.ACTIVE, S.PAID, S.REFUND_PENDING, S.REFUNDED, S.CANCELED, S.PENDING, S.FAILED},
    # Only if money shows up on a canceled order (or is then refunded in Stripe).
    S.CANCELED: {S.NEEDS_REVIEW, S.REFUNDED},
    S.REFUNDED: set(),
}

# Where a customer has paid and not been fully refunded: money is held.
MONEY_HELD = {S.PAID, S.ACTIVE, S.REFUND_PENDING, S.DISPUTED}


def can_transition(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, set())
