"""The order's state machine and history: every state change goes through `_move`, which refuses
transitions billing/states.py does not list and returns the OrderEvent (actor, reason) the caller
saves; `_record` appends an event that changes no state."""

from django.utils import timezone

from billing import signals
from billing.errors import InvalidTransition
from billing.models import Order, OrderEvent, OrderState
from billing.states import can_transition

S = OrderState


def _move(order: Order, to_state: str, *, actor: str, reason: str, stripe_ids=None) -> OrderEvent:
    """Change the order's state in memory and return the event; the caller saves both."""
    if not can_transition(order.state, to_state):
        raise InvalidTransition(order, to_state)
    event = OrderEvent(order=order, actor=actor, from_state=order.state, to_state=to_state,
                       reason=reason[:500], stripe_ids=stripe_ids or {})
    order.state = to_state
    order.state_changed_at = timezone.now()
    if order.held_since is not None and to_state in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.CANCELED):
        order.held_since = order.refund_deadline_at = None
        signals.attention_over.send(sender=Order, order=order, kinds=["held_money"])
    return event


def _record(order: Order, *, actor: str, reason: str, to_state: str = "", stripe_ids=None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, actor=actor, to_state=to_state, reason=reason[:500],
                                     stripe_ids=stripe_ids or {})
