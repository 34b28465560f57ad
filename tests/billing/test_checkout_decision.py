"""Checkout's decision as a service: each outcome a submitted checkout can have, decided from
what the browser showed (its orders, a proved address, the rate limit) with Stripe's word."""

import uuid

import pytest

from billing import services
from billing.models import Order, OrderState
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

Kind = services.CheckoutOutcomeKind


def decide(plan, email="ana@example.com", **facts):
    return services.checkout_decide(plan=plan, email=email, full_name="Ana", nonce=uuid.uuid4(),
                                    browser_key="browser-1", **facts)


def own(*orders):
    return [order.public_id.hex for order in orders]


def active(**fields) -> Order:
    return services.order_settle(order_id=paid_order(**fields).id, actor="webhook")


@pytest.fixture
def plan(stripe_emulator):
    return PlanFactory()


def test_a_rate_limited_checkout_makes_nothing(plan):
    outcome = decide(plan, retry_after=120)

    assert (outcome.kind, outcome.retry_after, outcome.order) == (Kind.RATE_LIMITED, 120, None)
    assert not Order.objects.exists()


def test_a_first_checkout_makes_the_order_and_its_payment(plan):
    outcome = decide(plan)

    assert outcome.kind == Kind.PAY
    assert outcome.order == Order.objects.get()
    assert outcome.order.stripe_payment_intent_id
    assert outcome.order.state == OrderState.PENDING


def test_a_checkout_stripe_cannot_set_up_keeps_the_order_and_says_so(plan, emulator_control):
    emulator_control.fail_next(method="POST", path="/v1/payment_intents", count=5, status=500)

    outcome = decide(plan)

    assert outcome.kind == Kind.SETUP_FAILED
    assert outcome.order == Order.objects.get()
    assert not outcome.order.stripe_payment_intent_id


def test_the_browsers_own_unpaid_order_is_paid_for_again_not_a_second_one(plan):
    earlier = order_with_payment_intent(plan=plan, email="ana@example.com")

    outcome = decide(plan, own_order_ids=own(earlier))

    assert (outcome.kind, outcome.order) == (Kind.RESUME_PAYMENT, earlier)
    assert Order.objects.count() == 1


def test_an_address_that_has_the_plan_is_told_so_in_a_strangers_browser(plan):
    earlier = active(plan=plan, email="ana@example.com")

    outcome = decide(plan)

    assert (outcome.kind, outcome.order, outcome.own, outcome.proved) == (Kind.ALREADY_BOUGHT, earlier, False, False)
    assert Order.objects.count() == 1


def test_a_payment_stripe_cannot_confirm_counts_as_possibly_paid(plan, emulator_control):
    earlier = order_with_payment_intent(plan=plan, email="ana@example.com")
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{earlier.stripe_payment_intent_id}",
                               count=10, status=500)

    outcome = decide(plan)

    assert (outcome.kind, outcome.order) == (Kind.ALREADY_BOUGHT, earlier)
    assert outcome.order.state == OrderState.PENDING  # as stored: nothing guessed onto the order
    assert Order.objects.count() == 1


def test_the_browser_whose_payment_made_the_account_is_offered_more_time(plan):
    earlier = paid_order(plan=plan, email="ana@example.com")  # paid; our order still says pending

    outcome = decide(plan, own_order_ids=own(earlier))

    assert (outcome.kind, outcome.order, outcome.proved) == (Kind.OFFER_MORE_TIME, earlier, True)
    assert Order.objects.get().state == OrderState.ACTIVE  # checked with Stripe before deciding


def test_a_proved_address_buying_again_gets_a_second_order_labelled_a_renewal(plan):
    active(plan=plan, email="ana@example.com")

    outcome = decide(plan, buy_again=True, address_proved=True)

    assert outcome.kind == Kind.PAY
    assert Order.objects.count() == 2
    assert outcome.order.renewal


def test_buy_again_from_a_browser_that_proved_nothing_is_not_a_second_order(plan):
    active(plan=plan, email="ana@example.com")

    outcome = decide(plan, buy_again=True)

    assert outcome.kind == Kind.ALREADY_BOUGHT
    assert Order.objects.count() == 1


def test_a_signed_in_customer_renewing_their_own_plan_goes_straight_to_payment_with_their_company(plan):
    earlier = active(plan=plan, email="ana@example.com")
    customer = earlier.user
    customer.company_name, customer.vat_number = "Ana Ltd", "GB123"
    customer.save()

    outcome = decide(plan, address_proved=True, customer=customer)

    assert outcome.kind == Kind.PAY
    assert outcome.order != earlier
    assert (outcome.order.buyer_company_name, outcome.order.buyer_vat_number, outcome.order.renewal) == (
        "Ana Ltd", "GB123", True)
