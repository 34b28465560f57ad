"""Stripe's signed events, delivered by the emulator over HTTP to dj-stripe's real webhook view."""

import time

import pytest
from djstripe.models import Charge, PaymentIntent, WebhookEventTrigger

from billing.models import OrderState
from tests.billing.helpers import order_with_payment_intent, pay

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


def test_dj_stripe_mirrors_the_payment_intent_and_charge_from_events(
    stripe_webhooks_to_live_server, emulator_control
):
    order = order_with_payment_intent()

    pay(order)
    emulator_control.wait_for_webhooks()

    assert PaymentIntent.objects.filter(id=order.stripe_payment_intent_id).exists()
    assert Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id).exists()


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
    assert not WebhookEventTrigger.objects.filter(valid=True).exists()
