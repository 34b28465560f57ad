"""The worker's half of a Stripe event: dj-stripe mirrors it, then the order settles on the mirror."""

import pytest
import stripe
from djstripe.models import Charge, PaymentIntent

from billing import tasks
from billing.models import OrderState
from billing.selectors import payment_intent_from_mirror
from tests.billing.helpers import order_with_payment_intent, paid_order, pay, stripe_event_for

pytestmark = pytest.mark.django_db


def test_a_queued_payment_event_mirrors_the_payment_and_activates_the_order(stripe_emulator):
    order = paid_order()

    tasks.process_stripe_event(stripe_event_for(order, "charge.succeeded"))

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.events.get(to_state="active").actor == "webhook"
    assert Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id, status="succeeded").exists()


def test_an_event_that_waited_while_the_customer_settled_is_not_processed_again(stripe_emulator, emulator_control):
    order = paid_order()
    event = stripe_event_for(order, "payment_intent.succeeded")
    tasks.process_stripe_event(stripe_event_for(order, "charge.succeeded"))
    emulator_control.fail_next(path="/v1/", count=50, status=500)

    tasks.process_stripe_event(event)

    assert emulator_control.faults()[0]["count"] == 50  # Stripe was not asked anything
    assert order.events.filter(to_state="active").count() == 1


def test_a_mirrored_payment_that_is_not_final_is_not_trusted(stripe_emulator):
    order = order_with_payment_intent()
    PaymentIntent.sync_from_stripe_data(stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id))
    pay(order)

    assert payment_intent_from_mirror(order.stripe_payment_intent_id) is None
