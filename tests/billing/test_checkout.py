import uuid

import pytest
import stripe

from billing import services
from billing.errors import PaymentSetupFailed
from billing.models import Order, OrderEvent, OrderState
from tests.factories import OrderFactory, PlanFactory

pytestmark = pytest.mark.django_db


def test_the_order_is_written_pending_before_anything_is_asked_of_stripe():
    order = services.order_create(plan=PlanFactory(), email=" Ada@Example.com ", full_name="Ada")

    assert order.state == OrderState.PENDING
    assert order.stripe_payment_intent_id is None
    assert (order.email, order.amount_cents, order.currency) == ("ada@example.com", 24900, "usd")
    assert OrderEvent.objects.get(order=order).actor == "checkout"


def test_an_order_reference_is_short_and_readable_over_the_phone():
    order = OrderFactory()

    assert len(order.reference) == 12
    assert order.reference.startswith("BK-")
    assert not set(order.reference[3:].replace("-", "")) & set("ILOU")


def test_submitting_the_same_checkout_form_twice_creates_one_order():
    nonce = uuid.uuid4()
    plan = PlanFactory()

    first = services.order_create(plan=plan, email="a@example.com", checkout_nonce=nonce)
    second = services.order_create(plan=plan, email="a@example.com", checkout_nonce=nonce)

    assert first.pk == second.pk
    assert Order.objects.count() == 1


def test_preparing_payment_creates_a_payment_intent_that_names_the_order(stripe_emulator):
    order = OrderFactory(email="ada@example.com")

    pi = services.order_prepare_payment(order=order)

    order.refresh_from_db()
    assert order.stripe_payment_intent_id == pi.id
    assert (pi.amount, pi.currency) == (24900, "usd")
    assert pi.metadata["order_id"] == str(order.id)
    assert pi.metadata["reference"] == order.reference
    assert order.reference in pi.description
    assert pi.statement_descriptor_suffix == order.reference.replace("BK-", "").replace("-", "")


def test_preparing_payment_twice_reuses_the_same_payment_intent(stripe_emulator):
    order = OrderFactory()

    first = services.order_prepare_payment(order=order)
    second = services.order_prepare_payment(order=order)

    assert first.id == second.id
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_a_lost_stripe_response_during_payment_setup_never_creates_a_second_payment_intent(
    stripe_emulator, emulator_control
):
    order = OrderFactory()
    emulator_control.lose_response_next(method="POST", path="/v1/payment_intents")

    pi = services.order_prepare_payment(order=order)

    order.refresh_from_db()
    assert order.stripe_payment_intent_id == pi.id
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_a_crash_between_creating_the_payment_intent_and_storing_it_is_repaired_by_the_next_call(
    stripe_emulator,
):
    order = OrderFactory()
    first = services.order_prepare_payment(order=order)
    # What the database looks like if the process died right after Stripe answered.
    Order.objects.filter(pk=order.pk).update(stripe_payment_intent_id=None, stripe_customer_id="")
    order.refresh_from_db()

    second = services.order_prepare_payment(order=order)

    assert second.id == first.id
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_stripe_being_down_at_checkout_leaves_a_pending_order_and_no_charge(stripe_emulator, emulator_control):
    order = OrderFactory()
    emulator_control.fail_next(method="POST", path="/v1/payment_intents", count=5, status=500)

    with pytest.raises(PaymentSetupFailed):
        services.order_prepare_payment(order=order)

    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert order.stripe_payment_intent_id is None


def test_stripe_is_not_asked_to_email_a_receipt_of_its_own_by_default(stripe_emulator):
    # Backstop's confirmation is the receipt: Stripe's as well would be two for one payment.
    pi = services.order_prepare_payment(order=OrderFactory(email="ada@example.com"))

    assert pi.receipt_email is None


def test_stripe_emails_its_own_receipt_too_when_the_setting_asks_for_it(stripe_emulator, settings):
    settings.STRIPE_RECEIPT_EMAILS = True

    pi = services.order_prepare_payment(order=OrderFactory(email="ada@example.com"))

    assert pi.receipt_email == "ada@example.com"
