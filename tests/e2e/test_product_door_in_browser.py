"""The demo's whole story in a real browser: the product at /app/ is closed before paying, opens
once the customer has paid and signed in, and closes again after a refund."""

import pytest
from playwright.sync_api import expect
from sesame.utils import get_query_string

from billing import services
from billing.models import Order
from tests.factories import PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def buy(page, server, email):
    PlanFactory()
    page.goto(server.url + "/checkout/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url("**/pay/")
    page.locator("input[name='cardnumber']").fill("4242424242424242")
    page.locator("input[name='exp-date']").fill("12 / 34")
    page.locator("input[name='cvc']").fill("123")
    page.locator("#pay-button").click()
    expect(page.locator("#order-status")).to_have_attribute("data-status-code", "active", timeout=20_000)


def test_the_product_is_closed_before_paying_opens_after_paying_and_closes_after_a_refund(page, app_server):
    page.goto(app_server.url + "/app/")
    page.wait_for_url("**/account/login/?next=/app/")  # closed: nobody is signed in

    buy(page, app_server, "ada@example.com")
    order = Order.objects.get()
    page.goto(app_server.url + "/account/signin/" + get_query_string(order.user))  # the emailed link
    page.wait_for_url("**/account/")
    page.goto(app_server.url + "/app/")
    expect(page.locator("#app-open")).to_have_text("Welcome to the product")

    services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Asked to cancel")
    page.reload()

    expect(page.locator("#app-closed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Your Annual plan was closed on")
    expect(page.locator("#app-renew")).to_be_visible()
