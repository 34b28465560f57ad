"""Test helpers that act as the customer's browser would, through the official SDK."""

import stripe

from billing import services
from billing.models import Order
from tests.factories import OrderFactory


def order_with_payment_intent(**order_fields) -> Order:
    order = OrderFactory(**order_fields)
    services.order_prepare_payment(order=order)
    order.refresh_from_db()
    return order


def pay(order: Order, payment_method: str = "pm_card_visa"):
    """Confirm the order's PaymentIntent at Stripe, as Stripe.js does after the customer clicks Pay."""
    try:
        return stripe.PaymentIntent.confirm(order.stripe_payment_intent_id, payment_method=payment_method,
                                            return_url="http://testserver/return")
    except stripe.CardError as exc:
        return exc


def paid_order(**order_fields) -> Order:
    order = order_with_payment_intent(**order_fields)
    pay(order)
    return order
