"""Unfinished payment attempts (decision D1, docs/decisions/0014-unfinished-payments-are-canceled.md):
cancel one in Stripe when support or the sweep asks, Stripe having the last word."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import locks, selectors, stripe_api
from billing.errors import PaymentNotCanceled
from billing.models import Order, OrderState
from billing.money import format_money
from billing.services.history import event_payment_canceled
from billing.services.settle import order_settle
from billing.settle_decision import MONEY_IN_FLIGHT, UNFINISHED_PAYMENT

logger = logging.getLogger(__name__)
S = OrderState

# Orders whose payment attempt may be canceled: nothing taken (or, for processing, Stripe decides).
PAYMENT_CANCELABLE = (S.PENDING, S.FAILED, S.PROCESSING)


def order_payment_cancel(*, order_id: int, actor: str, reason: str, user=None) -> Order:
    """Cancel the order's unfinished payment attempt in Stripe, then the order; return it.

    For a bank check left unfinished, a card form never sent, a declined card never retried:
    nothing was taken, and canceling the PaymentIntent makes sure nothing can be taken later.
    Stripe is read first and has the last word: a payment that succeeded or is on its way is
    settled instead and PaymentNotCanceled is raised, saying so. Safe to repeat and to race with
    the customer paying at that moment: the cancel carries one idempotency key per order, and
    whatever Stripe then says is what settle records (the order becomes canceled, with an
    OrderEvent naming `actor` and `reason`, only if Stripe canceled the payment).
    """
    order = Order.objects.get(pk=order_id)
    if order.state == S.CANCELED:
        return order
    if order.state not in PAYMENT_CANCELABLE:
        raise PaymentNotCanceled(f"{order.reference} is {order.get_state_display().lower()}: there is no unfinished "
                                 "payment to cancel.", order)
    if not order.stripe_payment_intent_id:
        with transaction.atomic():
            order = locks.order_lock(order_id)
            # Re-read under the lock: checkout may have set up a payment a moment ago.
            if order.state in (S.PENDING, S.FAILED) and not order.stripe_payment_intent_id:
                event_payment_canceled(order, actor=actor, user=user,
                                       reason=f"Canceled before any payment was started ({reason})").save()
                order.save()
                return order
        return order_payment_cancel(order_id=order_id, actor=actor, reason=reason)

    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    if pi.status in UNFINISHED_PAYMENT:
        try:
            pi = stripe_api.payment_intent_cancel(
                order.stripe_payment_intent_id, idempotency_key=f"backstop-order-{order.public_id}-cancel")
        except stripe_api.InvalidRequestError as exc:
            # It moved on between our read and the cancel (the customer finished paying): read again.
            logger.info("Cancel of %s refused by Stripe (%s); settling instead", order.reference, exc)
            pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    order = order_settle(order_id=order_id, actor=actor, user=user, reason=reason, payment_intent=pi)
    if order.state == S.CANCELED:
        return order
    if pi.status == "succeeded":
        taken = format_money(pi.amount_received, pi.currency)
        raise PaymentNotCanceled(f"Stripe shows {taken} taken for {order.reference}, so nothing was canceled; the "
                                 f"order is now {order.get_state_display().lower()}.", order)
    if pi.status in MONEY_IN_FLIGHT:
        raise PaymentNotCanceled(f"Stripe shows the payment for {order.reference} as {pi.status.replace('_', ' ')} "
                                 "(money on its way), so nothing was canceled.", order)
    raise PaymentNotCanceled(f"Stripe shows the payment for {order.reference} as {pi.status.replace('_', ' ')}; "
                             f"nothing was canceled (the order is {order.get_state_display().lower()}).", order)


def orders_with_abandoned_payment(*, now=None) -> list[int]:
    """Orders whose payment attempt has been unfinished for ABANDONED_PAYMENT_AFTER, as we last
    knew it (the sweep reads Stripe again before it cancels anything)."""
    return selectors.orders_with_unfinished_payment(unchanged_since=(now or timezone.now())
                                                    - settings.ABANDONED_PAYMENT_AFTER)


def order_payment_abandoned_cancel(*, order_id: int, now=None, actor: str = "sweep") -> Order:
    """The sweep's case: read Stripe (settling whatever it shows), and cancel the attempt only if it
    is still unfinished and has been for ABANDONED_PAYMENT_AFTER; return the order."""
    cutoff = (now or timezone.now()) - settings.ABANDONED_PAYMENT_AFTER
    order = order_settle(order_id=order_id, actor=actor, reason="payment attempt unfinished for a while")
    abandoned = (order.state in (S.PENDING, S.FAILED) and order.payment_status in UNFINISHED_PAYMENT
                 and order.payment_status_at is not None and order.payment_status_at < cutoff)
    if not abandoned:
        return order
    return order_payment_cancel(order_id=order_id, actor=actor, reason=(
        f"payment left unfinished for more than {abandoned_payment_after_words()}; nothing was charged"))


def abandoned_payment_after_words() -> str:
    """ABANDONED_PAYMENT_AFTER as people say it ("an hour", "90 minutes")."""
    duration = settings.ABANDONED_PAYMENT_AFTER
    minutes = int(duration.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return "an hour" if hours == 1 else f"{hours} hours"
    if minutes >= 1:
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    return f"{int(duration.total_seconds())} seconds"
