import pytest
import stripe
from djstripe.models import Charge, PaymentIntent

from billing import tasks
from billing.models import OrderState
from tests.billing.helpers import order_with_payment_intent, paid_order, pay

pytestmark = pytest.mark.django_db


def mirror(order):
    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    PaymentIntent.sync_from_stripe_data(pi)
    if pi.latest_charge:
        Charge.sync_from_stripe_data(stripe.Charge.retrieve(pi.latest_charge))


def test_a_webhook_settle_activates_from_the_mirror_without_asking_stripe_again(stripe_emulator,
                                                                               emulator_control):
    order = paid_order()
    mirror(order)
    emulator_control.fail_next(method="GET", path="/v1/payment_intents", count=10, status=500)

    tasks.settle_order(order.id, "webhook", "test")

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.card_last4 == "4242"


def test_a_mirror_that_is_not_final_is_not_trusted_and_stripe_is_asked(stripe_emulator):
    order = order_with_payment_intent()
    mirror(order)  # mirrored while still unpaid
    pay(order)

    tasks.settle_order(order.id, "webhook", "test")

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
