"""Issue 20, item 7 (decision 0015): one Stripe Customer per address, created once and reused by
every purchase and renewal; support finds all of a person's orders by its cus_ id."""

import pytest
import stripe

from billing import services
from billing.models import Order, StripeCustomer
from support.selectors import console_search
from tests.billing.helpers import at_once, order_with_payment_intent, paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_two_purchases_of_one_address_share_one_stripe_customer(stripe_emulator):
    first = paid_order(email="ada@example.com")
    second = paid_order(email="ada@example.com")

    assert first.stripe_customer_id == second.stripe_customer_id
    assert [c.id for c in stripe.Customer.list(email="ada@example.com").data] == [first.stripe_customer_id]
    assert StripeCustomer.objects.get(email="ada@example.com").stripe_customer_id == first.stripe_customer_id


def test_a_renewal_pays_with_the_customer_of_the_first_purchase(stripe_emulator):
    first = paid_order(email="ada@example.com")
    services.order_settle(order_id=first.id, actor="webhook")

    renewal = order_with_payment_intent(email="ada@example.com", renewal=True)

    assert stripe.PaymentIntent.retrieve(renewal.stripe_payment_intent_id).customer == first.stripe_customer_id


def test_another_address_gets_its_own_customer(stripe_emulator):
    ada = order_with_payment_intent(email="ada@example.com")
    bob = order_with_payment_intent(email="bob@example.com")

    assert ada.stripe_customer_id != bob.stripe_customer_id


def test_the_address_is_normalised_before_it_names_a_customer(stripe_emulator):
    lower = order_with_payment_intent(email="ada@example.com")
    upper = order_with_payment_intent(email="Ada@Example.com")

    assert lower.stripe_customer_id == upper.stripe_customer_id


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_of_one_address_at_once_make_one_customer(stripe_emulator):
    orders = [OrderFactory(email="ada@example.com") for _ in range(2)]
    pending = list(orders)

    errors = at_once(lambda: services.order_prepare_payment(order=pending.pop()))

    assert errors == []
    assert len({o.stripe_customer_id for o in Order.objects.filter(email="ada@example.com")}) == 1
    assert len(stripe.Customer.list(email="ada@example.com").data) == 1


def test_an_address_that_paid_before_the_mapping_keeps_its_first_customer(stripe_emulator):
    earlier = order_with_payment_intent(email="ada@example.com")
    StripeCustomer.objects.all().delete()  # as before decision 0015: the id lived only on the order

    later = order_with_payment_intent(email="ada@example.com")

    assert later.stripe_customer_id == earlier.stripe_customer_id


def test_support_finds_every_order_of_a_person_by_their_customer_id(stripe_emulator):
    first = paid_order(email="ada@example.com")
    second = paid_order(email="ada@example.com")
    never_paid = OrderFactory(email="ada@example.com")  # checkout left before the payment step

    titles = " ".join(r["title"] for r in console_search(first.stripe_customer_id))

    assert {first.reference, second.reference, never_paid.reference} <= set(titles.replace(" · ", " ").split())
