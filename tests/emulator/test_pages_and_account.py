"""What the emulator serves besides /v1: Stripe.js, the 3-D Secure page; and the account."""

import os

import pytest
import requests
import stripe

from stripe_emulator.control import STATIC_DIR


def get(emulator, path):
    return requests.get(f"{emulator.api_base}{path}", timeout=5)


@pytest.mark.parametrize("path", ["/v3/", "/v3/stripe.js"])
def test_stripe_js_is_served_as_javascript_when_present(emulator, path):
    response = get(emulator, path)
    if not os.path.exists(os.path.join(STATIC_DIR, "stripe.js")):
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_3ds_challenge_page_is_served_as_html(emulator):
    response = get(emulator, "/_emulator/3ds/pi_123")
    if not os.path.exists(os.path.join(STATIC_DIR, "challenge.html")):
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")


def test_a_receipt_page_exists_for_each_successful_charge(emulator):
    pi = stripe.PaymentIntent.create(amount=1999, currency="usd", confirm=True,
                                     payment_method="pm_card_visa")
    charge = stripe.Charge.retrieve(pi.latest_charge)
    response = requests.get(charge.receipt_url, timeout=5)
    assert response.status_code == 200
    assert "19.99 USD" in response.text


def test_the_account_is_retrievable_as_dj_stripe_needs(emulator):
    account = stripe.Account.retrieve()
    assert account.id.startswith("acct_")
    assert account.charges_enabled is True
    assert account.settings.payments.statement_descriptor == "BACKSTOP"
    assert stripe.Account.retrieve(account.id).id == account.id


def test_the_connected_accounts_list_is_empty(emulator):
    listed = stripe.Account.list()
    assert (listed.object, listed.data, listed.has_more) == ("list", [], False)


def test_requests_for_the_own_account_via_stripe_account_header_work(emulator):
    account = stripe.Account.retrieve()
    customers = stripe.Customer.list(stripe_account=account.id)
    assert customers.object == "list"


def test_requests_for_another_account_are_refused(emulator):
    with pytest.raises(stripe.PermissionError):
        stripe.Customer.list(stripe_account="acct_someoneelse0000")


def test_customer_sources_list_is_empty_for_dj_stripe(emulator, customer):
    listed = stripe.Customer.list_sources(customer.id, object="card")
    assert listed.data == []


def test_the_accounts_statement_prefix_is_what_its_charges_print(emulator):
    emulator.control.set_statement_prefix("ACME")

    account = stripe.Account.retrieve()
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method_types=["card"], confirm=True,
                                     payment_method="pm_card_visa", statement_descriptor_suffix="ORDER 7")

    assert account.settings.card_payments.statement_descriptor_prefix == "ACME"
    assert stripe.Charge.retrieve(pi.latest_charge).calculated_statement_descriptor == "ACME* ORDER 7"


def test_a_reset_gives_the_account_its_prefix_from_the_command_line_again(emulator):
    emulator.control.set_statement_prefix("ACME")

    emulator.control.reset()

    assert stripe.Account.retrieve().settings.card_payments.statement_descriptor_prefix == "BACKSTOP"
