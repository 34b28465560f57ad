"""An object PostgreSQL cannot store as it came (a NUL character in a card's billing name) is
mirrored without the bad characters, and the pull sync moves on instead of failing for ever."""

import json

import pytest
import requests
import stripe
from djstripe import models as djstripe_models

from billing import services
from billing.mirror import stripe_mirror_sync
from billing.models import StripeSyncCursor
from billing.services import stripe_webhook_endpoint_ensure
from tests.billing.helpers import order_with_payment_intent, stripe_event_for
from tests.billing.test_webhook_endpoint import post

pytestmark = pytest.mark.django_db


def pay_as_stripe_js(emulator, order, *, name: str):
    """Confirm with card details typed in the browser, as Stripe.js sends them (publishable key)."""
    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    response = requests.post(f"{emulator.api_base}/v1/payment_intents/{pi.id}/confirm", timeout=10, data={
        "key": emulator.publishable_key,
        "client_secret": pi.client_secret,
        "payment_method_data[type]": "card",
        "payment_method_data[card][number]": "4242424242424242",
        "payment_method_data[card][exp_month]": "12",
        "payment_method_data[card][exp_year]": "2034",
        "payment_method_data[card][cvc]": "123",
        "payment_method_data[billing_details][name]": name,
        "return_url": "https://shop.test/done",
    })
    assert response.status_code == 200, response.text
    return pi.id


def test_a_payment_whose_billing_name_holds_a_nul_is_mirrored_without_it(stripe_emulator):
    order = order_with_payment_intent()
    pi_id = pay_as_stripe_js(stripe_emulator, order, name="Ada\x00 Lovelace")

    result = stripe_mirror_sync()

    assert result.errors == []
    charge = djstripe_models.Charge.objects.get(payment_intent_id=pi_id)
    assert charge.stripe_data["billing_details"]["name"] == "Ada Lovelace"


def test_the_high_water_mark_moves_past_a_payment_whose_billing_name_holds_a_nul(stripe_emulator):
    order = order_with_payment_intent()
    pi_id = pay_as_stripe_js(stripe_emulator, order, name="\x00")

    stripe_mirror_sync()

    charge = stripe.Charge.retrieve(stripe.PaymentIntent.retrieve(pi_id).latest_charge)
    assert StripeSyncCursor.objects.get(resource="charges").created_gte == charge.created


def test_a_refund_event_about_a_charge_whose_billing_name_holds_a_nul_is_taken(stripe_emulator, client, settings):
    endpoint = stripe_webhook_endpoint_ensure(secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID,
                                              url="http://testserver/", livemode=False)
    order = order_with_payment_intent()
    pay_as_stripe_js(stripe_emulator, order, name="Ada\x00 Lovelace")
    services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    services.order_refund(order_id=order.id, actor="support:ana", reason="asked")
    body = json.dumps(stripe_event_for(order, "charge.refunded")).encode()

    response = post(client, endpoint, body)

    assert response.status_code == 200
