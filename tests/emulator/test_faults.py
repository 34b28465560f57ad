"""The fault-injection control API, and what the SDK does against it."""

import time

import pytest
import requests
import stripe

from stripe_emulator.testing import EmulatorProcess


def test_sdk_retries_after_a_lost_response_return_the_original_payment(emulator, control):
    # stripe-python sends an Idempotency-Key on every POST and reuses it on its automatic retries.
    control.lose_response_next(method="POST", path="/v1/payment_intents", mode="reset")
    stripe.max_network_retries = 2
    pi = stripe.PaymentIntent.create(amount=4200, currency="usd", payment_method="pm_card_visa",
                                     confirm=True)
    assert pi.status == "succeeded"
    assert pi.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe.PaymentIntent.list().data) == 1
    assert [c.id for c in stripe.Charge.list().data] == [pi.latest_charge]


def test_a_lost_response_answered_with_500_is_replayed_on_retry(emulator, control):
    control.lose_response_next(method="POST", path="/v1/customers", mode="500")
    stripe.max_network_retries = 1
    customer = stripe.Customer.create(email="once@example.com")
    assert customer.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe.Customer.list().data) == 1


def test_without_retries_a_lost_response_is_a_connection_error_but_the_work_is_done(
    emulator, control
):
    control.lose_response_next(method="POST", path="/v1/payment_intents")
    with pytest.raises(stripe.APIConnectionError):
        stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method="pm_card_visa",
                                    confirm=True)
    assert stripe.PaymentIntent.list().data[0].status == "succeeded"


def test_failing_before_processing_with_500_creates_nothing(emulator, control):
    control.fail_next(method="POST", path="/v1/customers", status=500)
    with pytest.raises(stripe.APIError) as raised:
        stripe.Customer.create()
    assert raised.value.http_status == 500
    assert raised.value.json_body["error"]["type"] == "api_error"
    assert stripe.Customer.list().data == []


def test_a_rate_limit_fault_returns_stripes_429(emulator, control):
    control.fail_next(path="/v1/charges", status=429)
    with pytest.raises(stripe.RateLimitError) as raised:
        stripe.Charge.list()
    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"


def test_a_rate_limited_request_is_not_saved_under_its_idempotency_key(emulator, control):
    control.fail_next(method="POST", path="/v1/customers", status=429)
    with pytest.raises(stripe.RateLimitError):
        stripe.Customer.create(idempotency_key="limited")
    customer = stripe.Customer.create(idempotency_key="limited")
    assert "Idempotent-Replayed" not in customer.last_response.headers


def test_a_timeout_fault_holds_the_connection_then_closes_it(emulator, control):
    control.fail_next(method="GET", path="/v1/account", status="timeout", seconds=0.5)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{emulator.api_base}/v1/account", auth=(emulator.secret_key, ""), timeout=5)
    assert time.monotonic() - started >= 0.5


def test_latency_delays_the_response(emulator, control):
    control.add_latency(0.4, path="/v1/account")
    started = time.monotonic()
    stripe.Account.retrieve()
    assert time.monotonic() - started >= 0.4


def test_faults_only_hit_matching_method_and_path_and_run_out(emulator, control):
    control.fail_next(method="POST", path="/v1/payment_intents*", count=2)
    stripe.Customer.create()  # another path: untouched
    stripe.PaymentIntent.list()  # another method: untouched
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            stripe.PaymentIntent.create(amount=1000, currency="usd")
    assert stripe.PaymentIntent.create(amount=1000, currency="usd").status == (
        "requires_payment_method")
    assert control.faults() == []


def test_advancing_the_clock_moves_created_timestamps(emulator, control):
    before = stripe.Customer.create().created
    control.advance_clock(3600)
    after = stripe.Customer.create().created
    assert after - before >= 3600


def test_reset_clears_objects_but_keeps_command_line_webhook_endpoints(emulator, control):
    stripe.Customer.create()
    stripe.WebhookEndpoint.create(url="https://example.com/hook", enabled_events=["*"])
    control.reset()
    assert stripe.Customer.list().data == []
    endpoints = stripe.WebhookEndpoint.list().data
    assert [e.url for e in endpoints] == [emulator.webhooks[0][0]]


def test_state_reports_counts(emulator, control):
    stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method="pm_card_visa",
                                confirm=True)
    counts = control.state()["counts"]
    assert counts["payment_intent"] == 1
    assert counts["charge"] == 1
    assert counts["balance_transaction"] == 1


def test_seed_creates_real_charges_through_the_payment_path(emulator, control):
    seeded = control.seed(charges=50, customers=5, spacing=10)
    assert control.state()["counts"]["charge"] == 50
    customer = seeded["customers"][0]
    charges = stripe.Charge.list(customer=customer, limit=100, expand=["data.balance_transaction"])
    assert len(charges.data) == 10
    assert charges.data[0].created - charges.data[1].created == 50
    assert charges.data[0].balance_transaction.fee > 0


def test_a_snapshot_survives_a_restart(tmp_path):
    path = str(tmp_path / "state.json")
    with EmulatorProcess(snapshot=path) as first, first.stripe_configured(max_network_retries=0):
        pi = stripe.PaymentIntent.create(amount=1000, currency="usd", confirm=True,
                                         payment_method="pm_card_visa")
    with EmulatorProcess(snapshot=path) as second, second.stripe_configured(max_network_retries=0):
        restored = stripe.PaymentIntent.retrieve(pi.id, expand=["latest_charge"])
        assert restored.latest_charge.amount == 1000
        assert stripe.Charge.list(payment_intent=pi.id).data[0].id == restored.latest_charge.id


def test_the_snapshot_endpoint_writes_the_named_file_in_the_snapshot_directory(tmp_path):
    with EmulatorProcess(snapshot_dir=str(tmp_path)) as emulator, emulator.stripe_configured(max_network_retries=0):
        stripe.Customer.create(email="keep@example.com")
        assert emulator.control.snapshot("now.json")["bytes"] > 0
    with open(tmp_path / "now.json") as fh:
        assert "keep@example.com" in fh.read()
