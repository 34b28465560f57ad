"""Stripe's documented rate limits in the emulator (stripe_emulator/ratelimit.py): off unless asked,
Stripe's 429 when past them."""

import pytest
import requests
import stripe

from stripe_emulator.ratelimit import RateLimiter
from stripe_emulator.testing import EmulatorProcess


def get(emulator, session, path, key=None):
    return session.get(f"{emulator.api_base}{path}", auth=(key or emulator.secret_key, ""), timeout=10)


def burst(emulator, paths, times):
    """`times` rounds of requests to each of `paths`, on one keep-alive connection; the answers."""
    with requests.Session() as session:
        return [get(emulator, session, path) for _ in range(times) for path in paths]


def test_without_the_flag_a_burst_is_never_refused(emulator, control):
    answers = burst(emulator, ["/v1/customers"], 60)

    assert {a.status_code for a in answers} == {200}
    assert control.rate_limits()["mode"] == "off"


def test_past_the_overall_limit_stripe_answers_429_rate_limit_with_its_body(emulator, control):
    control.limit_rates(overall=2)

    answers = burst(emulator, ["/v1/customers", "/v1/charges"], 2)

    assert [a.status_code for a in answers[:2]] == [200, 200]
    refused = answers[2]
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "rate_limit"
    assert error["doc_url"] == "https://stripe.com/docs/error-codes/rate-limit"
    assert error["message"] == ("Request rate limit exceeded. You can learn more about rate limits here "
                                "https://stripe.com/docs/rate-limits.")


def test_a_429_says_which_limiter_refused_it_and_does_not_ask_to_be_retried(emulator, control):
    control.limit_rates(overall=1)

    refused = burst(emulator, ["/v1/customers"], 2)[1]

    assert refused.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert "Stripe-Should-Retry" not in refused.headers
    assert refused.headers["Request-Id"].startswith("req_")


def test_the_sdk_raises_rate_limit_error_and_does_not_retry_it_by_itself(emulator, control):
    control.limit_rates(overall=1)
    stripe.max_network_retries = 2
    stripe.Customer.list()

    with pytest.raises(stripe.RateLimitError) as raised:
        stripe.Customer.list()

    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert control.rate_limits()["refused_total"] == 1  # one try: no Stripe-Should-Retry


def test_each_endpoint_has_its_own_limit_whatever_the_object(emulator, control, customer):
    control.limit_rates(per_endpoint=1)

    answers = burst(emulator, [f"/v1/customers/{customer.id}", "/v1/charges", "/v1/customers/cus_NoSuchOne1"], 1)

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Stripe-Rate-Limited-Reason"] == "endpoint-rate"
    assert control.rate_limits()["refused"] == [{"endpoint": "GET /v1/customers/{}", "count": 1}]


def test_a_refused_request_is_not_saved_under_its_idempotency_key(emulator, control):
    control.limit_rates(overall=1)
    stripe.Customer.list()
    with pytest.raises(stripe.RateLimitError):
        stripe.Customer.create(email="later@example.com", idempotency_key="one-customer")
    control.limit_rates(mode="off")

    customer = stripe.Customer.create(email="later@example.com", idempotency_key="one-customer")

    assert "Idempotent-Replayed" not in customer.last_response.headers
    assert [c.id for c in stripe.Customer.list().data] == [customer.id]


def test_stripe_js_requests_with_the_publishable_key_are_not_counted(emulator, control):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    control.limit_rates(overall=1)
    path = f"/v1/payment_intents/{pi.id}"
    params = {"key": emulator.publishable_key, "client_secret": pi.client_secret}

    answers = [requests.get(f"{emulator.api_base}{path}", params=params, timeout=10) for _ in range(5)]

    assert {a.status_code for a in answers} == {200}
    assert control.rate_limits()["refused_total"] == 0


def test_reset_goes_back_to_the_limits_given_on_the_command_line(emulator, control):
    control.limit_rates(mode="test")

    control.reset()

    assert control.rate_limits()["mode"] == "off"


def test_an_unknown_mode_is_refused(emulator, control):
    with pytest.raises(Exception, match="mode must be one of"):
        control.limit_rates(mode="production")


def test_the_command_line_flag_turns_on_the_live_limits():
    with EmulatorProcess(rate_limits="live") as process:
        status = process.control.rate_limits()

    assert (status["mode"], status["overall"], status["per_endpoint"]) == ("live", 100, 25)


# The limiter itself, without HTTP in between: a burst inside one instant.

def test_live_mode_allows_25_requests_a_second_per_endpoint():
    limiter = RateLimiter("live")

    answers = [limiter.admit("POST /v1/payment_intents") for _ in range(26)]

    assert answers[:25] == [None] * 25
    assert answers[25] == "endpoint-rate"


def test_live_mode_allows_100_requests_a_second_overall():
    limiter = RateLimiter("live")
    endpoints = [f"GET /v1/endpoint_{n}" for n in range(5)]

    answers = [limiter.admit(endpoint) for endpoint in endpoints for _ in range(21)]

    assert answers.count(None) == 100
    assert answers[-1] == "global-rate"


def test_test_mode_allows_25_requests_a_second_overall():
    limiter = RateLimiter("test")

    answers = [limiter.admit(endpoint) for endpoint in ("GET /v1/customers", "GET /v1/charges") for _ in range(13)]

    assert answers.count(None) == 25
    assert answers[-1] == "global-rate"


def test_search_has_its_lower_documented_limit_of_20_a_second():
    limiter = RateLimiter("live")

    answers = [limiter.admit("GET /v1/payment_intents/search") for _ in range(21)]

    assert answers[:20] == [None] * 20
    assert answers[20] == "endpoint-rate"


def test_the_budget_comes_back_as_the_second_passes():
    now = [1000.0]
    limiter = RateLimiter("test", clock=lambda: now[0])
    for _ in range(25):
        limiter.admit("GET /v1/customers")
    assert limiter.admit("GET /v1/customers") == "endpoint-rate"

    now[0] += 0.2  # a fifth of a second: five requests' worth

    assert [limiter.admit("GET /v1/customers") for _ in range(6)] == [None] * 5 + ["endpoint-rate"]
