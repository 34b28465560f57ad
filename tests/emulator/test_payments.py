"""PaymentIntents and charges with Stripe's test cards, through the official SDK."""

import pytest
import stripe


def pay(pm="pm_card_visa", **params):
    return stripe.PaymentIntent.create(
        amount=params.pop("amount", 2500), currency="usd", payment_method=pm, confirm=True,
        **params,
    )


def test_visa_test_payment_method_succeeds_with_one_charge(emulator):
    pi = pay()
    assert pi.status == "succeeded"
    assert pi.amount_received == 2500
    charges = stripe.Charge.list(payment_intent=pi.id)
    assert [c.id for c in charges.data] == [pi.latest_charge]
    assert charges.data[0].status == "succeeded"
    assert charges.data[0].paid is True


def test_latest_charge_is_an_id_string_unless_expanded(emulator):
    pi = pay()
    assert isinstance(pi.latest_charge, str)
    assert pi.latest_charge.startswith("ch_")
    expanded = stripe.PaymentIntent.retrieve(pi.id, expand=["latest_charge"])
    assert expanded.latest_charge.object == "charge"


def test_test_payment_method_id_turns_into_a_real_payment_method(emulator):
    pi = pay("pm_card_mastercard")
    pm = stripe.PaymentMethod.retrieve(pi.payment_method)
    assert pm.id.startswith("pm_")
    assert pm.id != "pm_card_mastercard"
    assert pm.card.brand == "mastercard"
    assert pm.card.last4 == "4444"


def test_charge_carries_the_payment_intent_details(emulator, customer):
    pi = pay(
        customer=customer.id,
        description="Order 1001",
        receipt_email="jenny@example.com",
        statement_descriptor_suffix="ORDER 1001",
        metadata={"order_id": "1001"},
    )
    charge = stripe.Charge.retrieve(pi.latest_charge)
    assert charge.metadata.to_dict() == {"order_id": "1001"}
    assert charge.customer == customer.id
    assert charge.description == "Order 1001"
    assert charge.receipt_email == "jenny@example.com"
    assert charge.calculated_statement_descriptor == "BACKSTOP* ORDER 1001"
    assert charge.amount_captured == 2500
    assert charge.amount_refunded == 0
    assert charge.refunded is False
    assert charge.outcome.type == "authorized"
    assert charge.balance_transaction.startswith("txn_")
    card = charge.payment_method_details.card
    assert (card.brand, card.last4, card.exp_month) == ("visa", "4242", 12)
    assert isinstance(card.exp_year, int)
    assert charge.billing_details.address.to_dict()["postal_code"] is None


DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
]


@pytest.mark.parametrize(("pm", "code", "decline_code"), DECLINES)
def test_declining_test_cards_fail_with_stripes_codes(emulator, pm, code, decline_code):
    with pytest.raises(stripe.CardError) as raised:
        pay(pm)
    error = raised.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error.decline_code == decline_code
    assert error.error.type == "card_error"
    charge = stripe.Charge.retrieve(error.error.charge)
    assert charge.status == "failed"
    assert charge.failure_code == code
    assert charge.outcome.reason == decline_code


def test_a_decline_returns_the_payment_intent_in_the_error(emulator):
    with pytest.raises(stripe.CardError) as raised:
        pay("pm_card_chargeDeclined")
    body = raised.value.json_body["error"]
    assert body["message"] == "Your card was declined."
    assert body["payment_intent"]["status"] == "requires_payment_method"
    assert body["payment_intent"]["last_payment_error"]["decline_code"] == "generic_decline"
    assert body["payment_intent"]["latest_charge"] == body["charge"]
    assert body["doc_url"] == "https://stripe.com/docs/error-codes/card-declined"
    assert body["request_log_url"].endswith(raised.value.request_id)


def test_a_declined_payment_intent_can_be_confirmed_again_with_another_card(emulator):
    with pytest.raises(stripe.CardError) as raised:
        pay("pm_card_chargeDeclinedInsufficientFunds")
    pi_id = raised.value.json_body["error"]["payment_intent"]["id"]
    pi = stripe.PaymentIntent.confirm(pi_id, payment_method="pm_card_visa")
    assert pi.status == "succeeded"
    assert pi.last_payment_error is None
    statuses = sorted(c.status for c in stripe.Charge.list(payment_intent=pi_id).data)
    assert statuses == ["failed", "succeeded"]


def test_a_succeeded_payment_intent_refuses_a_second_confirm(emulator):
    pi = pay()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.confirm(pi.id, payment_method="pm_card_visa")
    assert raised.value.code == "payment_intent_unexpected_state"
    assert len(stripe.Charge.list(payment_intent=pi.id).data) == 1


def test_create_without_confirm_then_confirm(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd",
                                     automatic_payment_methods={"enabled": True})
    assert pi.status == "requires_payment_method"
    assert pi.automatic_payment_methods.enabled is True
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    pi = stripe.PaymentIntent.confirm(pi.id, payment_method="pm_card_visa")
    assert pi.status == "succeeded"


def test_automatic_payment_methods_and_payment_method_types_are_exclusive(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method_types=["card"],
                                    automatic_payment_methods={"enabled": True})
    assert raised.value.http_status == 400


def test_confirming_without_a_payment_method_is_refused(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method_types=["card"])
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.confirm(pi.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_3ds_card_requires_action_with_a_redirect_to_the_challenge(emulator):
    pi = pay("pm_card_authenticationRequired", return_url="https://shop.test/return")
    assert pi.status == "requires_action"
    redirect = pi.next_action.redirect_to_url
    assert pi.next_action.type == "redirect_to_url"
    assert redirect.url == (
        f"{emulator.api_base}/_emulator/3ds/{pi.id}?client_secret={pi.client_secret}"
    )
    assert redirect.return_url == "https://shop.test/return"
    assert stripe.Charge.list(payment_intent=pi.id).data == []


def test_completing_the_3ds_challenge_succeeds_the_payment(emulator, control):
    pi = pay("pm_card_authenticationRequired")
    assert control.complete_3ds(pi.id, pi.client_secret) == "succeeded"
    pi = stripe.PaymentIntent.retrieve(pi.id)
    assert pi.status == "succeeded"
    charge = stripe.Charge.retrieve(pi.latest_charge)
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"


def test_failing_the_3ds_challenge_reports_an_authentication_failure(emulator, control):
    pi = pay("pm_card_authenticationRequired")
    assert control.fail_3ds(pi.id, pi.client_secret) == "requires_payment_method"
    pi = stripe.PaymentIntent.retrieve(pi.id)
    assert pi.last_payment_error.code == "payment_intent_authentication_failure"
    assert pi.last_payment_error.type == "invalid_request_error"
    types = [e.type for e in stripe.Event.list(limit=10).data]
    assert "payment_intent.payment_failed" in types


def test_the_3ds_endpoints_check_the_client_secret(emulator, control):
    pi = pay("pm_card_authenticationRequired")
    with pytest.raises(Exception, match="client_secret"):
        control.complete_3ds(pi.id, "pi_wrong_secret_x")


def test_dispute_card_succeeds_and_is_then_disputed(emulator):
    pi = pay("pm_card_createDispute")
    assert pi.status == "succeeded"
    charge = stripe.Charge.retrieve(pi.latest_charge)
    assert charge.disputed is True
    [dispute] = stripe.Dispute.list(charge=charge.id).data  # a charge names no dispute since API 2022-11-15
    assert dispute.charge == charge.id
    assert dispute.status == "needs_response"
    assert dispute.balance_transactions[0].amount == -2500
    assert [d.id for d in stripe.Dispute.list(charge=charge.id).data] == [dispute.id]
    assert stripe.Event.list(type="charge.dispute.created").data[0].data.object.id == dispute.id


def test_charge_customer_fail_card_attaches_but_cannot_be_charged(emulator, customer):
    pm = stripe.PaymentMethod.attach("pm_card_chargeCustomerFail", customer=customer.id)
    assert pm.customer == customer.id
    with pytest.raises(stripe.CardError):
        pay(pm.id, customer=customer.id)


def test_cancel_sets_the_cancellation_reason(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd")
    pi = stripe.PaymentIntent.cancel(pi.id, cancellation_reason="abandoned")
    assert pi.status == "canceled"
    assert pi.cancellation_reason == "abandoned"
    assert isinstance(pi.canceled_at, int)


def test_a_succeeded_payment_intent_cannot_be_canceled(emulator):
    pi = pay()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.cancel(pi.id)
    assert raised.value.code == "payment_intent_unexpected_state"
    assert raised.value.http_status == 400
    assert "because it has a status of succeeded" in str(raised.value)
    assert raised.value.error.payment_intent.status == "succeeded"


def test_a_payment_intent_waiting_for_3d_secure_can_be_canceled_once(emulator):
    pi = pay("pm_card_authenticationRequired")
    assert pi.status == "requires_action"

    pi = stripe.PaymentIntent.cancel(pi.id, cancellation_reason="abandoned")

    assert (pi.status, pi.cancellation_reason, pi.next_action) == ("canceled", "abandoned", None)
    with pytest.raises(stripe.InvalidRequestError, match="because it has a status of canceled"):
        stripe.PaymentIntent.cancel(pi.id)


def test_update_merges_metadata_and_unsets_empty_keys(emulator):
    pi = stripe.PaymentIntent.create(amount=1000, currency="usd", metadata={"a": "1", "b": "2"})
    pi = stripe.PaymentIntent.modify(pi.id, metadata={"b": "", "c": "3"}, description="new")
    assert pi.metadata.to_dict() == {"a": "1", "c": "3"}
    assert pi.description == "new"


def test_payment_intents_are_listed_by_customer(emulator, customer):
    mine = pay(customer=customer.id)
    pay()
    listed = stripe.PaymentIntent.list(customer=customer.id)
    assert [pi.id for pi in listed.data] == [mine.id]


def test_payment_intent_search_finds_by_metadata(emulator):
    wanted = pay(metadata={"order_id": "A-1"})
    pay(metadata={"order_id": "A-2"})
    result = stripe.PaymentIntent.search(query="metadata['order_id']:'A-1'")
    assert [pi.id for pi in result.data] == [wanted.id]


def test_payment_method_attach_and_list_for_a_customer(emulator, customer):
    pm = stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
    listed = stripe.PaymentMethod.list(customer=customer.id, type="card")
    assert [p.id for p in listed.data] == [pm.id]
    assert [p.id for p in stripe.Customer.list_payment_methods(customer.id).data] == [pm.id]
    event = stripe.Event.list(type="payment_method.attached").data[0]
    assert event.data.object.id == pm.id


def test_setup_future_usage_saves_the_card_to_the_customer(emulator, customer):
    pi = pay(customer=customer.id, setup_future_usage="off_session")
    assert stripe.PaymentMethod.retrieve(pi.payment_method).customer == customer.id


def test_customer_create_update_and_list(emulator):
    customer = stripe.Customer.create(email="a@example.com", metadata={"plan": "pro"})
    stripe.Customer.create(email="b@example.com")
    customer = stripe.Customer.modify(customer.id, name="Ada")
    assert customer.name == "Ada"
    assert [c.id for c in stripe.Customer.list(email="a@example.com").data] == [customer.id]
    event = stripe.Event.list(type="customer.updated").data[0]
    assert event.data.previous_attributes.to_dict() == {"name": None}


def test_customer_retrieve_with_dj_stripes_expands_has_empty_sources(emulator, customer):
    fetched = stripe.Customer.retrieve(customer.id, expand=["default_source", "sources"])
    assert fetched.default_source is None
    assert fetched.sources.object == "list"
    assert fetched.sources.data == []
    assert "sources" not in stripe.Customer.retrieve(customer.id)


def test_deleted_customer_is_retrievable_as_deleted(emulator, customer):
    stripe.Customer.delete(customer.id)
    assert stripe.Customer.retrieve(customer.id).deleted is True


def test_a_payment_method_type_the_emulator_does_not_run_is_refused(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method_types=["card", "us_bank_account"])

    assert raised.value.param == "payment_method_types"
