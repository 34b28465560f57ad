"""What a service hands back is what the database holds: a caller that branches on the returned
order's state branches on the truth, not on a guess kept in memory."""

import uuid

import pytest
from django.urls import reverse

from billing import services
from billing.models import Order, OrderState
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import OrderFactory, PlanFactory

pytestmark = pytest.mark.django_db


def assert_as_stored(order: Order):
    stored = Order.objects.get(pk=order.pk)
    fields = ["state", "email", "full_name", "amount_cents", "currency", "amount_refunded_cents", "paid_at",
              "held_since", "refund_deadline_at", "attention_reason", "stripe_payment_intent_id",
              "stripe_customer_id", "payment_status", "buyer_company_name", "buyer_vat_number", "user_id"]
    assert {f: getattr(order, f) for f in fields} == {f: getattr(stored, f) for f in fields}


def test_the_latest_purchase_asked_while_stripe_is_unreachable_is_the_order_as_stored(emulator_control):
    order = order_with_payment_intent(email="ana@example.com")
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)

    latest = services.order_latest_purchase(email="ana@example.com", plan=order.plan)

    assert latest.order.state == OrderState.PENDING
    assert_as_stored(latest.order)


def test_the_latest_purchase_asked_while_stripe_is_unreachable_says_it_is_unconfirmed(emulator_control):
    order = order_with_payment_intent(email="ana@example.com")
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)

    latest = services.order_latest_purchase(email="ana@example.com", plan=order.plan)

    assert latest.unconfirmed


def test_a_stranger_checking_out_while_stripe_cannot_say_whether_the_address_paid_gets_no_card_form(
    client, emulator_control
):
    order = order_with_payment_intent(email="ana@example.com")
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)

    page = client.post(reverse("billing:checkout"), {"email": "ana@example.com", "nonce": str(uuid.uuid4())})

    assert page.status_code == 200
    assert 'id="already-bought"' in page.content.decode()
    assert Order.objects.count() == 1
    assert Order.objects.get().state == OrderState.PENDING


# --- every service that returns an order returns it as stored -----------------------------------------


def _settled(**fields) -> Order:
    return services.order_settle(order_id=paid_order(**fields).id, actor="webhook")


def _held_for_another_amount() -> Order:
    order = paid_order(amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    return services.order_settle(order_id=order.id, actor="webhook")


RETURNING_AN_ORDER = {
    "order_create": lambda: services.order_create(plan=PlanFactory(), email="Ana@Example.com ", full_name=" Ana ",
                                                  checkout_nonce=uuid.uuid4(), browser_key="b1"),
    "order_latest_purchase": lambda: services.order_latest_purchase(
        email=(order := paid_order()).email, plan=order.plan).order,
    "order_settle": lambda: services.order_settle(order_id=paid_order().id, actor="webhook"),
    "order_hold_money": lambda: services.order_hold_money(order_id=paid_order().id, actor="customer",
                                                          reason="Stripe unreachable"),
    "order_refund": lambda: services.order_refund(order_id=_settled().id, actor="support", reason="asked"),
    "order_refund, partly": lambda: services.order_refund(order_id=_settled().id, actor="support", reason="asked",
                                                          amount_cents=100),
    "order_accept_amount": lambda: services.order_accept_amount(order_id=_held_for_another_amount().id,
                                                                actor="support", reason="a discount by phone"),
    "order_adopt": lambda: services.order_adopt(payment_intent_id=paid_order().stripe_payment_intent_id),
    "order_payment_cancel": lambda: services.order_payment_cancel(
        order_id=order_with_payment_intent().id, actor="support", reason="asked"),
    "order_payment_cancel, nothing started": lambda: services.order_payment_cancel(
        order_id=OrderFactory().id, actor="support", reason="asked"),
    "order_payment_abandoned_cancel": lambda: services.order_payment_abandoned_cancel(
        order_id=order_with_payment_intent().id),
    "order_buyer_details_record": lambda: services.order_buyer_details_record(
        order=OrderFactory(), company_name="Ana Ltd", vat_number="GB123"),
}


@pytest.mark.parametrize("call", RETURNING_AN_ORDER.values(), ids=RETURNING_AN_ORDER.keys())
def test_the_order_a_service_returns_is_the_order_as_stored(call, stripe_emulator):
    assert_as_stored(call())
