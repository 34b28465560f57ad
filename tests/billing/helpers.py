"""Test helpers that act as the customer's browser would, through the official SDK."""

import json
import threading
from collections import Counter

import stripe
from django.db import close_old_connections, connection

from billing import services
from billing.models import Order
from tests.factories import OrderFactory


def order_with_payment_intent(**order_fields) -> Order:
    order = OrderFactory(**order_fields)
    services.order_prepare_payment(order=order)
    order.refresh_from_db()
    return order


def server_calls(control) -> Counter:
    """Server-side (secret key) requests the emulator has answered so far, by method and path."""
    return Counter({f"{r['method']} {r['path']}": r["count"] for r in control.state()["requests"]
                    if r["key"] == "secret"})


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


def at_once(func, times: int = 2) -> list[Exception]:
    """Run `func` in `times` threads released together (each with its own database connection),
    as two people, two hosts or a retried request would; return what they raised."""
    errors = []
    start = threading.Barrier(times)

    def run():
        try:
            start.wait()
            func()
        except Exception as exc:  # collected for the caller to assert on
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def stripe_event_for(order: Order, event_type: str) -> dict:
    """The event Stripe created about this order's payment, as a webhook would carry it."""
    for event in stripe.Event.list(type=event_type, limit=100).auto_paging_iter():
        obj = event.data.object
        if order.stripe_payment_intent_id in (obj.get("id"), obj.get("payment_intent")):
            return json.loads(str(event))
    raise AssertionError(f"no {event_type} event for {order.reference}")
