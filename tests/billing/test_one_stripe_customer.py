"""Issue 20, item 7 (decision 0015): one Stripe Customer per address, reused by every later
purchase and renewal; support finds all of a person's orders by its cus_ id. Issue 21, item 6
(decision 0034): an address's first order goes without one, so a purchase costs three Stripe calls."""

from collections import Counter

import pytest
import stripe

from billing import services
from billing.models import Order, StripeCustomer
from config.failpoints import FailpointError
from support.selectors import console_search
from tests.billing.helpers import at_once, order_with_payment_intent, paid_order, server_calls
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_an_address_first_order_pays_without_a_stripe_customer(stripe_emulator):
    first = order_with_payment_intent(email="ada@example.com")

    assert first.stripe_customer_id == ""
    assert stripe.PaymentIntent.retrieve(first.stripe_payment_intent_id).customer is None
    assert stripe.Customer.list(email="ada@example.com").data == []
    assert not StripeCustomer.objects.filter(email="ada@example.com").exists()


def test_an_address_first_order_records_only_its_payment_on_the_timeline(stripe_emulator):
    first = order_with_payment_intent(email="ada@example.com")

    event = first.events.get(kind="payment_set_up")

    assert event.stripe_ids == {"payment_intent": first.stripe_payment_intent_id}


def test_an_address_first_order_asks_stripe_only_for_its_payment(stripe_emulator, emulator_control):
    order = OrderFactory(email="ada@example.com")
    before = server_calls(emulator_control)

    services.order_prepare_payment(order=order)

    assert server_calls(emulator_control) - before == Counter({"POST /v1/payment_intents": 1})


def test_the_second_order_of_an_address_makes_its_one_customer(stripe_emulator):
    paid_order(email="ada@example.com")
    second = paid_order(email="ada@example.com")

    assert second.stripe_customer_id.startswith("cus_")
    assert [c.id for c in stripe.Customer.list(email="ada@example.com").data] == [second.stripe_customer_id]
    assert StripeCustomer.objects.get(email="ada@example.com").stripe_customer_id == second.stripe_customer_id


def test_every_later_order_of_an_address_shares_its_one_customer(stripe_emulator):
    paid_order(email="ada@example.com")
    second = paid_order(email="ada@example.com")
    third = paid_order(email="ada@example.com")

    assert third.stripe_customer_id == second.stripe_customer_id
    assert len(stripe.Customer.list(email="ada@example.com").data) == 1


def test_a_renewal_pays_with_the_address_customer(stripe_emulator):
    first = paid_order(email="ada@example.com")
    services.order_settle(order_id=first.id, actor="webhook")

    renewal = order_with_payment_intent(email="ada@example.com", renewal=True)

    customer = stripe.PaymentIntent.retrieve(renewal.stripe_payment_intent_id).customer
    assert customer == StripeCustomer.objects.get(email="ada@example.com").stripe_customer_id


def test_a_first_order_set_up_again_after_a_later_order_made_the_customer_still_goes_without(stripe_emulator, arm):
    first = OrderFactory(email="ada@example.com")
    arm("checkout.after_payment_intent_created=raise")  # Stripe made its PaymentIntent; we never stored it
    with pytest.raises(FailpointError):
        services.order_prepare_payment(order=first)
    arm("")
    order_with_payment_intent(email="ada@example.com")  # another device, a moment later: the Customer

    services.order_prepare_payment(order=first)  # the first device's checkout, tried again
    first.refresh_from_db()

    # The same parameters under the same idempotency key: Stripe answers with the PaymentIntent it made.
    payments = [pi for pi in stripe.PaymentIntent.list(limit=100).auto_paging_iter()
                if pi.metadata["reference"] == first.reference]
    assert [pi.id for pi in payments] == [first.stripe_payment_intent_id]
    assert payments[0].customer is None
    assert first.stripe_customer_id == ""


def test_another_address_gets_its_own_customer(stripe_emulator):
    OrderFactory(email="ada@example.com")
    OrderFactory(email="bob@example.com")
    ada = order_with_payment_intent(email="ada@example.com")
    bob = order_with_payment_intent(email="bob@example.com")

    assert ada.stripe_customer_id.startswith("cus_")
    assert bob.stripe_customer_id.startswith("cus_")
    assert ada.stripe_customer_id != bob.stripe_customer_id


def test_the_address_is_normalised_before_it_names_a_customer(stripe_emulator):
    OrderFactory(email="ada@example.com")
    lower = order_with_payment_intent(email="ada@example.com")
    upper = order_with_payment_intent(email="Ada@Example.com")

    assert lower.stripe_customer_id.startswith("cus_")
    assert lower.stripe_customer_id == upper.stripe_customer_id


@pytest.mark.django_db(transaction=True)
def test_two_later_checkouts_of_one_address_at_once_make_one_customer(stripe_emulator):
    OrderFactory(email="ada@example.com")
    pending = [OrderFactory(email="ada@example.com") for _ in range(2)]
    later = [order.id for order in pending]

    errors = at_once(lambda: services.order_prepare_payment(order=pending.pop()))

    assert errors == []
    customers = {o.stripe_customer_id for o in Order.objects.filter(id__in=later)}
    assert len(customers) == 1
    assert customers.pop().startswith("cus_")
    assert len(stripe.Customer.list(email="ada@example.com").data) == 1


def test_an_address_that_paid_before_the_mapping_keeps_its_first_customer(stripe_emulator):
    OrderFactory(email="ada@example.com")
    earlier = order_with_payment_intent(email="ada@example.com")
    StripeCustomer.objects.all().delete()  # as before decision 0015: the id lived only on the order

    later = order_with_payment_intent(email="ada@example.com")

    assert later.stripe_customer_id == earlier.stripe_customer_id


def test_support_finds_every_order_of_a_person_by_their_customer_id(stripe_emulator):
    first = paid_order(email="ada@example.com")  # the address's first: paid without a Customer
    second = paid_order(email="ada@example.com")
    never_paid = OrderFactory(email="ada@example.com")  # checkout left before the payment step

    titles = " ".join(r["title"] for r in console_search(second.stripe_customer_id))

    assert {first.reference, second.reference, never_paid.reference} <= set(titles.replace(" · ", " ").split())
