"""The payment methods offered are stated, not left to the Dashboard: cards only
(docs/decisions/0029-cards-only.md)."""

import pytest
import stripe

from tests.billing.helpers import order_with_payment_intent

pytestmark = pytest.mark.django_db


def test_a_checkout_payment_offers_cards_only(stripe_emulator):
    order = order_with_payment_intent()

    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)

    assert pi.payment_method_types == ["card"]


def test_a_checkout_payment_leaves_no_method_to_the_dashboards_choice(stripe_emulator):
    order = order_with_payment_intent()

    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)

    assert pi.automatic_payment_methods is None
