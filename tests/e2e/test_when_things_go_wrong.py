"""The customer's side when things go wrong, in a real browser: never a false word about money,
never a second charge, never a dead end."""

import pytest
import stripe
from playwright.sync_api import expect

from billing.models import Order, OrderState
from billing.tokens import order_status_token
from tests.billing.helpers import pay as pay_at_stripe
from tests.browser import strict_page
from tests.e2e.test_checkout_in_browser import CARD_OK, expect_status, fill_card, pay, start_checkout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_js_page(chromium):
    with strict_page(chromium, javascript=False) as page:
        yield page


def test_a_charged_customer_with_javascript_off_is_told_they_were_charged(
    page, no_js_page, app_server, emulator_control
):
    start_checkout(page, app_server)
    emulator_control.pause_webhooks()  # Stripe's events held: only asking Stripe can tell
    order = Order.objects.get()
    pay_at_stripe(order)  # the browser paid, then never came back

    no_js_page.goto(f"{app_server.url}/orders/{order_status_token(order)}/")

    expect(no_js_page.locator("#order-status")).to_have_attribute("data-status-code", "active")
    expect(no_js_page.locator("#order-status")).not_to_contain_text("Not charged")
    expect(no_js_page.locator("#status-pay")).to_be_hidden()


def test_the_pay_page_without_javascript_says_so_once_and_offers_no_dead_button(no_js_page, page, app_server):
    start_checkout(page, app_server)
    pay_url = page.url

    no_js_page.goto(pay_url)

    expect(no_js_page.locator("#pay-needs-javascript")).to_contain_text("You have not been charged")
    expect(no_js_page.locator("#pay-button")).to_be_hidden()
    expect(no_js_page.get_by_text("Loading the secure card form")).to_be_hidden()


def test_a_customer_who_paid_and_comes_back_to_checkout_is_not_charged_twice(page, app_server, emulator_control):
    emulator_control.pause_webhooks()
    start_checkout(page, app_server, email="ana@example.com")
    fill_card(page, CARD_OK)
    pay(page)
    page.wait_for_url("**/orders/**")

    page.goto(app_server.url + "/checkout/")
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_role("button", name="Continue to payment").click()

    # Its plan runs: the page says what another payment would add, and asks, before any card form.
    expect(page.locator("#more-time")).to_contain_text("runs until")
    expect(page.locator("input[name='cardnumber']")).to_have_count(0)
    assert Order.objects.count() == 1
    assert Order.objects.get().state == OrderState.ACTIVE


def test_a_mistyped_email_is_questioned_and_corrected_with_one_click(page, app_server):
    from tests.factories import PlanFactory

    PlanFactory()
    page.goto(app_server.url + "/checkout/")
    page.get_by_label("Email").fill("ana@gmial.con")
    page.get_by_role("button", name="Continue to payment").click()

    page.get_by_role("button", name="Use ana@gmail.com").click()

    page.wait_for_url("**/pay/")
    assert Order.objects.get().email == "ana@gmail.com"


def what_the_order_pages_say(page) -> list[str]:
    """Every order page and status poll the browser is answered with, from now on, as it arrives."""
    said = []

    def listen(route):
        response = route.fetch()
        said.append(response.text())
        route.fulfill(response=response)

    page.route("**/orders/**", listen)
    return said


def assert_never_told_not_charged(said):
    assert said, "the browser never reached the order's page"
    untrue = ("Not charged", "not been charged", 'not_charged"', 'failed"')
    assert [text for text in said if any(words in text for words in untrue)] == []


@pytest.mark.parametrize("lost_how", ["reset", "500"])
def test_a_customer_whose_confirm_response_was_lost_lands_on_a_page_that_says_charged_and_activates(
    page, app_server, emulator_control, lost_how
):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)
    # Stripe charges the card, then its answer to the browser is lost on the way. Webhooks are held
    # back, so only the page the customer lands on can find out that they paid.
    emulator_control.pause_webhooks()
    emulator_control.lose_response_next(method="POST", path="/v1/payment_intents/*/confirm", mode=lost_how)
    said = what_the_order_pages_say(page)

    pay(page)

    page.wait_for_url("**/orders/**")
    expect_status(page, "active")
    expect(page.locator("#status-headline")).to_contain_text("all set")
    assert emulator_control.faults() == [], "the confirm response was never lost"
    assert_never_told_not_charged(said)
    order = Order.objects.get()
    assert order.state == OrderState.ACTIVE
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 1
    emulator_control.resume_webhooks()
    emulator_control.wait_for_webhooks()
    assert len([e for e in app_server.emails() if order.reference in e]) == 1


def test_a_customer_whose_confirm_was_sent_twice_and_answered_already_succeeded_lands_on_a_page_that_says_charged(
    page, app_server, emulator_control
):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)
    emulator_control.pause_webhooks()
    resent = []

    def charge_then_answer_the_resend(route):
        # The first confirm charges the card and its answer is lost; the browser's re-send is what
        # comes back: Stripe's "already succeeded" error, with the PaymentIntent in it.
        route.fetch()
        again = route.fetch()
        resent.append(again.json())
        route.fulfill(response=again)

    page.route("**/v1/payment_intents/*/confirm", charge_then_answer_the_resend, times=1)
    said = what_the_order_pages_say(page)

    pay(page)

    page.wait_for_url("**/orders/**")
    expect_status(page, "active")
    error = resent[0]["error"]
    assert (error["code"], error["payment_intent"]["status"]) == ("payment_intent_unexpected_state", "succeeded")
    assert_never_told_not_charged(said)
    order = Order.objects.get()
    assert order.state == OrderState.ACTIVE
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 1
