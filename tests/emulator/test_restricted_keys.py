"""Restricted keys (rk_test_...): what the key's permissions allow is answered, anything else
refused as Stripe refuses it (403, stripe.PermissionError naming the missing permission)."""

import subprocess
import sys

import pytest
import stripe

KEY = "rk_test_" + "R" * 30


@pytest.fixture
def client(emulator):
    return lambda: stripe.StripeClient(api_key=KEY, base_addresses={"api": emulator.api_base},
                                       max_network_retries=0)


def test_a_restricted_key_reads_what_it_may_read(emulator, client):
    emulator.control.add_restricted_key(KEY, {"charge": "read"})

    assert client().v1.charges.list().data == []


def test_a_restricted_key_is_refused_what_it_may_not_touch_as_stripe_refuses_it(emulator, client):
    emulator.control.add_restricted_key(KEY, {"charge": "read"})

    with pytest.raises(stripe.PermissionError) as raised:
        client().v1.customers.list()

    assert raised.value.http_status == 403
    assert raised.value.error.type == "invalid_request_error"
    assert "does not have the required permissions for this endpoint" in raised.value.user_message
    assert "Having the 'rak_customer_read' permission would allow this request to continue." in (
        raised.value.user_message)


def test_read_permission_does_not_allow_a_write(emulator, client):
    emulator.control.add_restricted_key(KEY, {"customer": "read"})

    with pytest.raises(stripe.PermissionError) as raised:
        client().v1.customers.create(params={"email": "ada@example.com"})

    assert "'rak_customer_write'" in raised.value.user_message


def test_write_permission_also_reads(emulator, client):
    emulator.control.add_restricted_key(KEY, {"customer": "write"})
    customer = client().v1.customers.create(params={"email": "ada@example.com"})

    assert client().v1.customers.retrieve(customer.id).email == "ada@example.com"


def test_a_restricted_key_the_account_never_made_is_refused_with_401(emulator, client):
    with pytest.raises(stripe.AuthenticationError):
        client().v1.charges.list()


def test_a_reset_forgets_restricted_keys_added_since_the_start(emulator, client):
    emulator.control.add_restricted_key(KEY, {"charge": "read"})

    emulator.control.reset()

    with pytest.raises(stripe.AuthenticationError):
        client().v1.charges.list()


def test_a_permission_the_emulator_does_not_know_is_refused_at_start():
    result = subprocess.run([sys.executable, "-m", "stripe_emulator", "--restricted-key", f"{KEY}=charges:read"],
                            capture_output=True, text=True, timeout=30)

    assert result.returncode == 2
    assert "RESOURCE:read or RESOURCE:write" in result.stderr


def test_expanding_an_object_needs_read_permission_on_it(emulator, client):
    emulator.control.add_restricted_key(KEY, {"payment_intent": "read"})

    with pytest.raises(stripe.PermissionError) as raised:
        client().v1.payment_intents.list(params={"expand": ["data.customer"]})

    assert "'rak_customer_read'" in raised.value.user_message
