"""A customer buys the Annual plan in a real browser, against a real server and the emulator."""

import pytest
import stripe
from playwright.sync_api import expect

from accounts.models import Entitlement
from billing.models import Order, OrderState
from tests.factories import PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000002500003155"


def start_checkout(page, server, email="ada@example.com"):
    PlanFactory()
    page.goto(server.url + "/checkout/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url("**/pay/")
    page.locator("input[name='cardnumber']").wait_for()


def fill_card(page, number):
    page.locator("input[name='cardnumber']").fill(number)
    page.locator("input[name='exp-date']").fill("12 / 34")
    page.locator("input[name='cvc']").fill("123")


def pay(page):
    page.locator("#pay-button").click()


def expect_status(page, code):
    expect(page.locator("#order-status")).to_have_attribute("data-status-code", code, timeout=20_000)


def test_paying_with_a_good_card_lands_on_an_active_status_page(page, app_server):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)

    pay(page)

    page.wait_for_url("**/orders/**")
    expect_status(page, "active")
    expect(page.locator("#status-headline")).to_contain_text("all set")
    order = Order.objects.get()
    assert order.state == OrderState.ACTIVE
    assert Entitlement.objects.filter(order=order).count() == 1


def test_a_declined_card_is_explained_inline_and_a_retry_on_the_same_order_succeeds(page, app_server):
    start_checkout(page, app_server)
    fill_card(page, CARD_DECLINED)

    pay(page)

    expect(page.locator("#payment-message")).to_contain_text("declined")
    expect(page.locator("#payment-message")).to_contain_text("not been charged")
    fill_card(page, CARD_OK)
    pay(page)
    expect_status(page, "active")
    order = Order.objects.get()
    charges = stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data
    assert sorted(c.status for c in charges) == ["failed", "succeeded"]


def test_a_card_that_asks_for_3d_secure_completes_after_the_challenge(page, app_server):
    start_checkout(page, app_server)
    fill_card(page, CARD_3DS)

    pay(page)
    challenge = page.frame_locator("#stripe-emulator-3ds-modal iframe")
    challenge.get_by_role("button", name="Complete").click()

    expect_status(page, "active")


def test_after_the_server_dies_right_after_the_charge_a_reload_shows_the_order_active(
    page, app_server, emulator_control
):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)
    # Webhooks are held back so that only the customer's own reload can bring the order up to date.
    emulator_control.pause_webhooks()

    crashed = []

    def crash_before_the_return_is_served(route):
        # Stripe has charged the card and the browser is coming back: the server dies right now.
        app_server.kill()
        crashed.append(route.request.url)
        route.continue_()

    page.route("**/orders/**", crash_before_the_return_is_served, times=1)

    pay(page)
    for _ in range(200):
        if crashed:
            break
        page.wait_for_timeout(100)  # lets Playwright dispatch the route handler
    assert crashed, "the browser never came back from payment"
    order = Order.objects.get()
    assert order.state == OrderState.PENDING  # charged at Stripe, unknown to us
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "succeeded"

    app_server.start()
    page.goto(crashed[0])  # the customer reloads

    expect_status(page, "active")
    order = Order.objects.get()
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 1
    assert len([e for e in app_server.emails() if order.reference in e]) == 1


def test_a_double_click_on_pay_charges_once(page, app_server):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)

    page.locator("#pay-button").dblclick()

    expect_status(page, "active")
    order = Order.objects.get()
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 1
