"""Refunds, balance transactions, disputes' money side."""

import pytest
import stripe

from stripe_emulator.testing import ControlError


@pytest.fixture
def paid(emulator):
    return stripe.PaymentIntent.create(amount=5000, currency="usd", payment_method="pm_card_visa",
                                       confirm=True, description="Order 9")


def test_a_full_refund_marks_the_charge_refunded(paid):
    refund = stripe.Refund.create(charge=paid.latest_charge)
    assert (refund.amount, refund.status) == (5000, "succeeded")
    charge = stripe.Charge.retrieve(paid.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (5000, True)


def test_a_partial_refund_by_payment_intent_keeps_reason_and_metadata(paid):
    refund = stripe.Refund.create(payment_intent=paid.id, amount=1200,
                                  reason="requested_by_customer", metadata={"ticket": "T-1"})
    assert refund.charge == paid.latest_charge
    assert refund.payment_intent == paid.id
    assert refund.reason == "requested_by_customer"
    assert refund.metadata.to_dict() == {"ticket": "T-1"}
    charge = stripe.Charge.retrieve(paid.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1200, False)


def test_an_over_refund_is_refused(paid):
    stripe.Refund.create(charge=paid.latest_charge, amount=4000)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Refund.create(charge=paid.latest_charge, amount=1001)
    assert raised.value.code == "amount_too_large"
    assert raised.value.param == "amount"
    assert "greater than unrefunded amount on charge ($10.00)" in raised.value.user_message


def test_refunding_a_fully_refunded_charge_is_refused(paid):
    stripe.Refund.create(charge=paid.latest_charge)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Refund.create(charge=paid.latest_charge)
    assert raised.value.code == "charge_already_refunded"


def test_a_refund_needs_a_charge_or_a_payment_intent(emulator):
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Refund.create(amount=100)


def test_refunds_are_listed_by_charge_and_retrievable(paid):
    first = stripe.Refund.create(charge=paid.latest_charge, amount=100)
    second = stripe.Refund.create(charge=paid.latest_charge, amount=200)
    listed = stripe.Refund.list(charge=paid.latest_charge)
    assert [r.id for r in listed.data] == [second.id, first.id]
    assert stripe.Refund.retrieve(first.id).amount == 100
    expanded = stripe.Charge.retrieve(paid.latest_charge, expand=["refunds"])
    assert expanded.refunds.total_count == 2


def test_a_refund_has_a_negative_balance_transaction(paid):
    refund = stripe.Refund.create(charge=paid.latest_charge, amount=700)
    txn = stripe.BalanceTransaction.retrieve(refund.balance_transaction)
    assert (txn.type, txn.amount, txn.source) == ("refund", -700, refund.id)


def test_each_charge_has_a_balance_transaction_with_its_fee(paid):
    charge = stripe.Charge.retrieve(paid.latest_charge, expand=["balance_transaction"])
    txn = charge.balance_transaction
    assert (txn.type, txn.amount, txn.fee, txn.net) == ("charge", 5000, 175, 4825)
    assert txn.fee_details[0].type == "stripe_fee"
    assert txn.source == charge.id
    listed = stripe.BalanceTransaction.list(source=charge.id)
    assert [t.id for t in listed.data] == [txn.id]


def test_balance_transactions_become_available_when_the_clock_passes_available_on(paid, control):
    charge = stripe.Charge.retrieve(paid.latest_charge)
    assert stripe.BalanceTransaction.retrieve(charge.balance_transaction).status == "pending"
    control.advance_clock(3 * 24 * 60 * 60)
    assert stripe.BalanceTransaction.retrieve(charge.balance_transaction).status == "available"


def test_a_disputed_charge_cannot_be_refunded(emulator):
    pi = stripe.PaymentIntent.create(amount=5000, currency="usd", confirm=True,
                                     payment_method="pm_card_createDispute")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Refund.create(payment_intent=pi.id)
    assert raised.value.code == "charge_disputed"


def test_a_charge_update_changes_metadata_and_emits_charge_updated(paid):
    charge = stripe.Charge.modify(paid.latest_charge, metadata={"note": "vip"})
    assert charge.metadata.to_dict() == {"note": "vip"}
    event = stripe.Event.list(type="charge.updated").data[0]
    assert event.data.previous_attributes.metadata.to_dict() == {"note": None}


def test_a_failed_refund_gives_the_money_back_to_the_charge(paid, control):
    refund = stripe.Refund.create(charge=paid.latest_charge)
    control.fail_refund(refund.id)
    charge = stripe.Charge.retrieve(paid.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)


def test_a_failed_refund_says_why_and_has_a_balance_transaction_reversing_it(paid, control):
    refund = stripe.Refund.create(charge=paid.latest_charge, amount=700)
    control.fail_refund(refund.id, failure_reason="lost_or_stolen_card")
    failed = stripe.Refund.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "lost_or_stolen_card")
    txn = stripe.BalanceTransaction.retrieve(failed.failure_balance_transaction)
    assert (txn.type, txn.amount, txn.source) == ("refund_failure", 700, refund.id)


def test_a_charge_whose_refund_failed_may_be_refunded_again(paid, control):
    control.fail_refund(stripe.Refund.create(charge=paid.latest_charge).id)
    again = stripe.Refund.create(charge=paid.latest_charge)
    assert (again.amount, again.status) == (5000, "succeeded")


def test_a_refund_fails_only_once(paid, control):
    refund = stripe.Refund.create(charge=paid.latest_charge)
    control.fail_refund(refund.id)
    with pytest.raises(ControlError):
        control.fail_refund(refund.id)


def test_a_failed_refund_is_announced_as_charge_refund_updated(paid, control):
    refund = stripe.Refund.create(charge=paid.latest_charge)
    control.fail_refund(refund.id)
    updates = stripe.Event.list(type="charge.refund.updated").data
    assert [(e.data.object.id, e.data.object.status) for e in updates] == [(refund.id, "failed")]
