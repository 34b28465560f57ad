"""The Stripe-Version header, as Stripe reads it: a released version is used, any other refused."""

import pytest
import requests
import stripe


def get_account(emulator, version):
    return requests.get(f"{emulator.api_base}/v1/account", auth=(emulator.secret_key, ""), timeout=5,
                        headers={"Stripe-Version": version})


def test_the_version_the_sdk_pins_is_accepted_and_named_in_the_answer(emulator):
    response = get_account(emulator, stripe.api_version)

    assert response.status_code == 200
    assert response.headers["Stripe-Version"] == stripe.api_version


def test_an_older_released_version_is_accepted(emulator):
    response = get_account(emulator, "2024-06-20")

    assert response.status_code == 200
    assert response.headers["Stripe-Version"] == "2024-06-20"


def test_a_malformed_version_is_refused_as_stripe_refuses_it(emulator):
    response = get_account(emulator, "2019-2-19")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["message"]) == ("invalid_request_error", "Invalid Stripe API version: 2019-2-19")


def test_a_version_newer_than_any_release_is_refused(emulator):
    response = get_account(emulator, "2099-01-01.future")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid Stripe API version: 2099-01-01.future"


def test_a_webhook_endpoint_keeps_the_version_it_was_created_with(emulator):
    endpoint = stripe.WebhookEndpoint.create(url="https://shop.test/hook", enabled_events=["*"],
                                             api_version="2025-03-31.basil")

    assert stripe.WebhookEndpoint.retrieve(endpoint.id).api_version == "2025-03-31.basil"


def test_a_webhook_endpoint_with_an_unreleased_version_is_refused(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.WebhookEndpoint.create(url="https://shop.test/hook", enabled_events=["*"], api_version="2099-01-01")

    assert raised.value.param == "api_version"


def test_each_endpoint_gets_events_in_the_version_it_was_created_with(emulator, webhook_receiver):
    stripe.WebhookEndpoint.create(url=webhook_receiver.url, enabled_events=["customer.created"],
                                  api_version="2025-03-31.basil")

    stripe.Customer.create()
    event = stripe.Event.list(type="customer.created").data[0]
    received = webhook_receiver.wait_for_event(event.id, count=2)

    assert sorted(r.payload["api_version"] for r in received) == sorted(["2025-03-31.basil", stripe.api_version])
