"""What the status page may say from dj-stripe's mirror when Stripe cannot be asked."""

import pytest
import stripe
from djstripe.models import PaymentIntent

from billing.selectors import payment_intent_from_mirror
from tests.billing.helpers import order_with_payment_intent, pay

pytestmark = pytest.mark.django_db


def test_a_mirrored_payment_that_is_not_final_is_not_trusted(stripe_emulator):
    order = order_with_payment_intent()
    PaymentIntent.sync_from_stripe_data(stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id))
    pay(order)

    assert payment_intent_from_mirror(order.stripe_payment_intent_id) is None
