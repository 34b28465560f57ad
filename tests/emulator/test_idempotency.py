"""Idempotency keys, as Stripe documents them for API v1."""

import threading

import pytest
import requests
import stripe


def create_pi(key, amount=2000, **extra):
    return stripe.PaymentIntent.create(amount=amount, currency="usd", payment_method="pm_card_visa",
                                       confirm=True, idempotency_key=key, **extra)


def test_same_key_and_params_replays_the_first_response(emulator):
    first = create_pi("order-1")
    again = create_pi("order-1")
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    assert len(stripe.PaymentIntent.list().data) == 1
    assert len(stripe.Charge.list().data) == 1


def test_a_replay_returns_the_first_status_and_body_byte_for_byte(emulator):
    data = {"amount": "2000", "currency": "usd", "payment_method": "pm_card_visa",
            "confirm": "true"}
    headers = {"Authorization": f"Bearer {emulator.secret_key}", "Idempotency-Key": "raw-1"}
    url = f"{emulator.api_base}/v1/payment_intents"
    first = requests.post(url, data=data, headers=headers, timeout=5)
    second = requests.post(url, data=data, headers=headers, timeout=5)
    assert (second.status_code, second.content) == (first.status_code, first.content)
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Request-Id"] != first.headers["Request-Id"]


def test_a_replayed_decline_is_the_same_402(emulator):
    with pytest.raises(stripe.CardError) as first:
        stripe.PaymentIntent.create(amount=2000, currency="usd", confirm=True,
                                    payment_method="pm_card_chargeDeclined", idempotency_key="d-1")
    with pytest.raises(stripe.CardError) as second:
        stripe.PaymentIntent.create(amount=2000, currency="usd", confirm=True,
                                    payment_method="pm_card_chargeDeclined", idempotency_key="d-1")
    assert second.value.json_body == first.value.json_body
    assert len(stripe.Charge.list().data) == 1


def test_same_idempotency_key_with_other_params_is_refused(emulator):
    create_pi("order-2", amount=2000)
    with pytest.raises(stripe.IdempotencyError) as raised:
        create_pi("order-2", amount=3000)
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


def test_same_idempotency_key_on_another_endpoint_is_refused(emulator):
    stripe.Customer.create(idempotency_key="shared")
    with pytest.raises(stripe.IdempotencyError):
        stripe.PaymentIntent.create(amount=1000, currency="usd", idempotency_key="shared")


def test_a_key_whose_first_request_is_in_flight_gets_409(emulator, control):
    control.add_latency(1.0, method="POST", path="/v1/payment_intents")
    results = {}

    def first():
        results["first"] = create_pi("slow-1")

    thread = threading.Thread(target=first)
    thread.start()
    threading.Event().wait(0.3)
    with pytest.raises(stripe.APIError) as raised:
        create_pi("slow-1")
    thread.join()
    assert raised.value.http_status == 409
    assert raised.value.json_body["error"]["type"] == "idempotency_error"
    assert raised.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert results["first"].status == "succeeded"


def test_keys_expire_after_24_hours_of_emulator_time(emulator, control):
    first = create_pi("daily")
    control.advance_clock(24 * 60 * 60)
    second = create_pi("daily")
    assert second.id != first.id
    assert "Idempotent-Replayed" not in second.last_response.headers


def test_a_key_younger_than_24_hours_still_replays(emulator, control):
    first = create_pi("almost-daily")
    control.advance_clock(24 * 60 * 60 - 60)
    assert create_pi("almost-daily").id == first.id


def test_keys_are_scoped_per_api_key(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd", idempotency_key="scoped")
    response = requests.post(
        f"{emulator.api_base}/v1/payment_intents/{pi.id}/confirm",
        data={"key": emulator.publishable_key, "client_secret": pi.client_secret,
              "payment_method_data[type]": "card",
              "payment_method_data[card][number]": "4242424242424242",
              "payment_method_data[card][exp_month]": "12",
              "payment_method_data[card][exp_year]": "2034"},
        headers={"Idempotency-Key": "scoped"},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_a_validation_error_is_not_saved_under_the_key(emulator):
    with pytest.raises(stripe.InvalidRequestError):
        stripe.PaymentIntent.create(amount=1000, currency="usd", colour="red",
                                    idempotency_key="fixable")
    assert stripe.PaymentIntent.create(amount=1000, currency="usd",
                                       idempotency_key="fixable").status == (
        "requires_payment_method")


def test_get_requests_ignore_idempotency_keys(emulator):
    headers = {"Authorization": f"Bearer {emulator.secret_key}", "Idempotency-Key": "get-1"}
    first = requests.get(f"{emulator.api_base}/v1/charges", headers=headers, timeout=5)
    stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method="pm_card_visa",
                                confirm=True)
    second = requests.get(f"{emulator.api_base}/v1/charges", headers=headers, timeout=5)
    assert len(first.json()["data"]) == 0
    assert len(second.json()["data"]) == 1
