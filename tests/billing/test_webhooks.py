"""Stripe's signed events, delivered by the emulator over HTTP to the webhook endpoint."""

import time

import pytest

from billing.models import OrderState
from tests.billing.helpers import order_with_payment_intent, pay, stripe_event_for

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_state(order, state, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.state == state:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order stayed {order.state}, expected {state}")


def test_a_payment_succeeded_event_activates_the_order_without_anyone_looking(
    stripe_webhooks_to_live_server, emulator_control
):
    order = order_with_payment_intent()

    pay(order)
    emulator_control.wait_for_webhooks()

    order = wait_for_state(order, OrderState.ACTIVE)
    assert order.events.filter(to_state="active").get().actor == "webhook"


def test_an_event_that_cannot_be_settled_now_gets_503_and_settles_when_stripe_delivers_it_again(
    stripe_webhooks_to_live_server, emulator_control, settings
):
    settings.STRIPE_INTERACTIVE_TIMEOUT = 1
    order = order_with_payment_intent()
    emulator_control.pause_webhooks()
    pay(order)
    event = stripe_event_for(order, "payment_intent.succeeded")
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=4, status=500)

    emulator_control.resume_webhooks()
    emulator_control.wait_for_webhooks(timeout=20)

    order = wait_for_state(order, OrderState.ACTIVE)
    assert 503 in [d["http_status"] for d in emulator_control.webhook_deliveries(event=event["id"])]
    assert order.events.get(to_state="active").actor == "webhook"


def test_a_duplicated_event_delivery_activates_once(stripe_webhooks_to_live_server, emulator_control):
    order = order_with_payment_intent()
    emulator_control.duplicate_webhooks(count=20)

    pay(order)
    emulator_control.wait_for_webhooks()

    order = wait_for_state(order, OrderState.ACTIVE)
    assert order.events.filter(to_state="active").count() == 1


def test_webhooks_with_a_wrong_signature_are_rejected_and_change_nothing(
    stripe_webhooks_to_live_server, emulator_control, settings
):
    from billing.services import stripe_webhook_endpoint_ensure

    stripe_webhook_endpoint_ensure(secret="whsec_not_the_real_one", uuid=settings.STRIPE_WEBHOOK_UUID,
                                   url="http://x", livemode=False)
    order = order_with_payment_intent()

    pay(order)
    emulator_control.wait_for_webhooks(timeout=20)

    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert {d["http_status"] for d in emulator_control.webhook_deliveries(event=stripe_event_for(
        order, "payment_intent.succeeded")["id"])} == {400}


def test_events_for_an_order_the_customer_already_settled_are_answered_without_asking_stripe(
    stripe_webhooks_to_live_server, emulator_control
):
    from billing.services import order_settle

    order = order_with_payment_intent()
    emulator_control.pause_webhooks()
    pay(order)
    order_settle(order_id=order.id, actor="customer")
    charge_event = stripe_event_for(order, "charge.succeeded")
    emulator_control.fail_next(path="/v1/", count=50, status=500)

    emulator_control.resume_webhooks()
    emulator_control.wait_for_webhooks()

    assert emulator_control.faults()[0]["count"] == 50  # no call to Stripe, from the request or a task
    delivered = emulator_control.webhook_deliveries(event=charge_event["id"])
    assert [d["http_status"] for d in delivered] == [200]
    assert order.events.filter(to_state="active").get().actor == "customer"
