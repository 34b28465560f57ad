"""Never a false word about money: a page that speaks of an order with a PaymentIntent knows
what Stripe knows before it renders, or says it is checking."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from billing.tokens import order_status_token
from tests.billing.helpers import order_with_payment_intent, pay

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def status_page(client, order):
    return client.get(reverse("billing:status", kwargs={"token": order_status_token(order)})).content.decode()


def test_a_charged_customer_opening_their_status_link_without_javascript_sees_they_were_charged(
    client, stripe_emulator
):
    order = order_with_payment_intent()
    pay(order)  # Stripe took the money; webhooks held, the browser never came back

    page = status_page(client, order)

    import re
    print(re.findall(r'data-status-code="[a-z_]+"', page))
    assert 'data-status-code="active"' in page
    assert "Not charged" not in page
    assert 'id="status-pay" hidden' in page


def test_while_stripe_is_being_asked_by_another_request_the_page_says_checking_not_not_charged(
    client, stripe_emulator
):
    order = order_with_payment_intent()
    pay(order)
    cache.add(f"billing:settle:{order.id}", 1, timeout=30)  # a request that died mid-settle took the turn

    page = status_page(client, order)

    assert 'data-status-code="checking"' in page
    assert "Checking your payment with our payment provider" in page
    assert "Not charged" not in page
    assert 'id="status-pay" hidden' in page


def test_an_unpaid_order_is_not_charged_once_stripe_has_said_so(client, stripe_emulator):
    order = order_with_payment_intent()

    page = status_page(client, order)

    assert 'data-status-code="not_charged"' in page


def test_a_poll_right_after_a_check_uses_that_answer_without_asking_stripe_again(
    client, stripe_emulator, emulator_control
):
    order = order_with_payment_intent()
    status_page(client, order)
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=10, status=500)

    body = client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)})).json()

    assert body["code"] == "not_charged"


def test_reloading_the_pay_page_while_stripe_fails_gives_the_friendly_page_not_an_error(
    client, stripe_emulator, emulator_control
):
    order = order_with_payment_intent()
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=10, status=429)

    response = client.get(reverse("billing:pay", kwargs={"token": order_status_token(order)}))

    assert response.status_code == 503
    page = response.content.decode()
    assert "We can't take your payment just this minute" in page
    assert "If you already paid for this order, your money is safe" in page
    assert "You have <strong>not</strong> been charged" not in page


@pytest.mark.parametrize("fault", [429, 500])
def test_when_stripe_answers_an_error_the_status_page_says_checking_not_not_charged(
    client, stripe_emulator, emulator_control, fault
):
    order = order_with_payment_intent()
    pay(order)
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=10, status=fault)

    page = status_page(client, order)

    assert 'data-status-code="checking"' in page
    assert "Not charged" not in page


def test_when_stripe_hangs_the_status_page_answers_within_seconds_and_says_checking(
    client, stripe_emulator, emulator_control, settings
):
    import time

    settings.STRIPE_INTERACTIVE_TIMEOUT = 1
    order = order_with_payment_intent()
    pay(order)
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=5, status="timeout", seconds=35)
    started = time.monotonic()

    page = status_page(client, order)

    assert time.monotonic() - started < 6  # two 1 s attempts and the SDK's backoff, not 3 x 20 s
    assert 'data-status-code="checking"' in page


def test_after_a_killed_settle_the_next_request_past_the_throttle_settles(client, stripe_emulator):
    import time

    from billing.views import SETTLE_THROTTLE_SECONDS

    order = order_with_payment_intent()
    pay(order)
    turn = f"billing:settle:{order.id}"
    cache.add(turn, 1, timeout=SETTLE_THROTTLE_SECONDS)  # taken by a killed worker
    deadline = time.monotonic() + SETTLE_THROTTLE_SECONDS + 5
    while cache.get(turn) is not None and time.monotonic() < deadline:
        time.sleep(0.1)  # until the turn has expired: past the throttle

    page = status_page(client, order)

    assert 'data-status-code="active"' in page
