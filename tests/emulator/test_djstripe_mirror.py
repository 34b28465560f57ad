"""dj-stripe mirrors what the emulator holds, with no workaround beyond a local WebhookEndpoint row."""

from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from djstripe import models as djstripe_models

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_objects(stripe_emulator):
    """A customer with a card, a paid-and-refunded payment and a disputed one."""
    customer = stripe.Customer.create(email="ada@example.com", name="Ada")
    paid = stripe.PaymentIntent.create(amount=24900, currency="usd", customer=customer.id, confirm=True,
                                       payment_method="pm_card_visa", payment_method_types=["card"])
    refund = stripe.Refund.create(payment_intent=paid.id, amount=4900, reason="requested_by_customer")
    disputed = stripe.PaymentIntent.create(amount=24900, currency="usd", customer=customer.id, confirm=True,
                                           payment_method="pm_card_createDispute", payment_method_types=["card"])
    return {"customer": customer, "paid": paid, "refund": refund, "disputed": disputed}


def test_sync_from_stripe_data_mirrors_a_charge_with_its_payment_intent_and_balance_transaction(stripe_objects):
    charge = stripe.Charge.retrieve(stripe_objects["paid"].latest_charge)

    mirrored = djstripe_models.Charge.sync_from_stripe_data(charge)

    assert mirrored.payment_intent.id == stripe_objects["paid"].id
    assert mirrored.customer.id == stripe_objects["customer"].id
    assert djstripe_models.BalanceTransaction.objects.filter(id=charge.balance_transaction).exists()


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("Customer", "customer"),
        ("PaymentIntent", "paid"),
        ("Refund", "refund"),
    ],
)
def test_sync_from_stripe_data_mirrors_each_object_type(stripe_objects, model, key):
    obj = stripe_objects[key]
    cls = getattr(djstripe_models, model)

    cls.sync_from_stripe_data(cls.stripe_class.retrieve(obj.id))

    assert cls.objects.filter(id=obj.id).exists()


def test_the_dispute_card_produces_a_dispute_that_dj_stripe_mirrors(stripe_objects):
    disputes = stripe.Dispute.list(limit=10).data
    assert len(disputes) == 1

    djstripe_models.Dispute.sync_from_stripe_data(disputes[0])

    assert djstripe_models.Dispute.objects.get(id=disputes[0].id).amount == 24900


def test_djstripe_sync_models_mirrors_every_type_backstop_reads(stripe_objects):
    call_command("djstripe_sync_models", "Customer", "PaymentMethod", "PaymentIntent", "Charge", "Refund",
                 "BalanceTransaction", "Dispute", stdout=StringIO(), stderr=StringIO())

    assert djstripe_models.Customer.objects.count() == 1
    assert djstripe_models.PaymentMethod.objects.count() >= 1
    assert djstripe_models.PaymentIntent.objects.count() == 2
    assert djstripe_models.Charge.objects.count() == 2
    assert djstripe_models.Refund.objects.count() == 1
    assert djstripe_models.BalanceTransaction.objects.count() >= 3
    assert djstripe_models.Dispute.objects.count() == 1
