"""Secret versus publishable keys, as Stripe enforces them."""

import pytest
import requests
import stripe


def post(emulator, path, data):
    return requests.post(f"{emulator.api_base}{path}", data=data, timeout=10)


def test_another_secret_key_is_refused_with_401(emulator):
    with pytest.raises(stripe.AuthenticationError) as raised:
        stripe.Customer.list(api_key="sk_test_" + "x" * 30)
    assert raised.value.http_status == 401
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key provided: sk_test_" in raised.value.user_message


def test_a_request_without_a_key_is_refused_with_401(emulator):
    response = requests.get(f"{emulator.api_base}/v1/charges", timeout=5)
    assert response.status_code == 401
    assert "You did not provide an API key" in response.json()["error"]["message"]


def test_basic_auth_with_the_secret_key_works(emulator):
    response = requests.get(f"{emulator.api_base}/v1/account", auth=(emulator.secret_key, ""),
                            timeout=5)
    assert response.status_code == 200


def test_a_publishable_key_cannot_list_charges(emulator):
    response = requests.get(f"{emulator.api_base}/v1/charges",
                            params={"key": emulator.publishable_key}, timeout=5)
    assert response.status_code == 401
    assert "publishable API key" in response.json()["error"]["message"]


def test_a_publishable_key_retrieves_a_payment_intent_with_its_client_secret(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd", metadata={"secret": "yes"})
    response = requests.get(f"{emulator.api_base}/v1/payment_intents/{pi.id}", timeout=5,
                            params={"key": emulator.publishable_key,
                                    "client_secret": pi.client_secret})
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "requires_payment_method"
    assert "metadata" not in body  # merchant-side fields stay hidden from the browser


def test_a_publishable_key_with_the_wrong_client_secret_is_refused(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    response = requests.get(f"{emulator.api_base}/v1/payment_intents/{pi.id}", timeout=5,
                            params={"key": emulator.publishable_key,
                                    "client_secret": f"{pi.id}_secret_wrong"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "client_secret"


def card_data(emulator, pi, number, **extra):
    return {
        "key": emulator.publishable_key,
        "client_secret": pi.client_secret,
        "payment_method_data[type]": "card",
        "payment_method_data[card][number]": number,
        "payment_method_data[card][exp_month]": "12",
        "payment_method_data[card][exp_year]": "2034",
        "payment_method_data[card][cvc]": "123",
        "payment_method_data[billing_details][name]": "Jenny Rosen",
        "payment_method_data[billing_details][email]": "jenny@example.com",
        "payment_method_data[payment_user_agent]": "stripe.js/emulator",
        "return_url": "https://shop.test/done",
        **extra,
    }


def test_a_publishable_key_confirms_with_raw_card_data_like_stripe_js(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    response = post(emulator, f"/v1/payment_intents/{pi.id}/confirm",
                    card_data(emulator, pi, "4242424242424242"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    charge = stripe.Charge.retrieve(stripe.PaymentIntent.retrieve(pi.id).latest_charge)
    assert charge.billing_details.name == "Jenny Rosen"
    assert charge.payment_method_details.card.last4 == "4242"


def test_a_publishable_key_decline_is_a_402_with_the_payment_intent(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    response = post(emulator, f"/v1/payment_intents/{pi.id}/confirm",
                    card_data(emulator, pi, "4000000000009995"))
    error = response.json()["error"]
    assert response.status_code == 402
    assert (error["code"], error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert error["payment_intent"]["status"] == "requires_payment_method"


def test_a_publishable_key_3ds_confirm_returns_the_redirect(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    body = post(emulator, f"/v1/payment_intents/{pi.id}/confirm",
                card_data(emulator, pi, "4000002500003155")).json()
    assert body["status"] == "requires_action"
    assert body["next_action"]["redirect_to_url"]["return_url"] == "https://shop.test/done"


def test_a_publishable_key_confirm_needs_the_client_secret(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    data = card_data(emulator, pi, "4242424242424242")
    del data["client_secret"]
    assert post(emulator, f"/v1/payment_intents/{pi.id}/confirm", data).status_code == 400


def test_a_secret_key_cannot_send_raw_card_numbers(emulator):
    with pytest.raises(stripe.StripeError) as raised:
        stripe.PaymentMethod.create(type="card", card={"number": "4242424242424242",
                                                       "exp_month": 12, "exp_year": 2034})
    error = raised.value.json_body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Sending credit card numbers directly to the Stripe API")


def test_stripe_client_works_against_the_emulator(emulator):
    client = emulator.client()
    pi = client.v1.payment_intents.create(params={
        "amount": 1200, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True})
    assert pi.status == "succeeded"
    assert client.v1.charges.retrieve(pi.latest_charge).amount == 1200
