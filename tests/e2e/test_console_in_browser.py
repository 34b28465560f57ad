"""A support person works a case in a real browser: landing page → case → resolved."""

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from billing.models import Order, OrderState
from tests.billing.helpers import paid_order
from tests.browser import strict_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set to a folder to refresh the screenshots in docs/support-workflow.md.
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
def console_page(chromium, app_server):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", refunds=True,
                 name="Ana", stdout=StringIO())
    with strict_page(chromium, width=1280, height=900) as page:
        page.goto(app_server.url + "/admin/login/")
        page.get_by_label("Email").fill("ana@backstop.localhost")
        page.get_by_label("Password").fill("a long pass phrase 42")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        yield page


def test_a_charged_customer_without_access_is_resolved_in_two_clicks_from_the_landing_page(
    console_page, app_server, emulator_control
):
    emulator_control.pause_webhooks()  # lost, as in a crash: nothing but a person or the sweep finishes it
    order = paid_order(email="ada@example.com", full_name="Ada Lovelace")
    console_page.goto(app_server.url + "/admin/")
    console_page.get_by_role("searchbox", name="Search").fill("ada@")
    console_page.get_by_role("button", name="Search").click()
    shot(console_page, "landing")

    console_page.get_by_role("link", name=order.reference).first.click()  # click 1: open the case
    expect(console_page.locator("#case-diagnosis")).to_contain_text("never activated")
    console_page.locator("#case-recover").click()  # click 2: Recover

    expect(console_page.locator("#case-state")).to_have_attribute("data-state", "active")
    shot(console_page, "order")
    reply = console_page.locator("#reply-active")
    expect(reply).to_contain_text("Hello Ada")
    expect(reply).to_contain_text(order.reference)
    assert Order.objects.get(pk=order.pk).state == OrderState.ACTIVE


def test_a_refund_confirmed_twice_in_the_browser_refunds_once(console_page, app_server):
    import stripe

    from billing import services

    order = services.order_settle(order_id=paid_order().id, actor="webhook")
    console_page.goto(f"{app_server.url}/admin/billing/order/{order.pk}/refund/")
    console_page.get_by_label("Why").fill("The customer asked by email.")

    console_page.locator("#refund-submit").dblclick()

    expect(console_page.locator("#case-state")).to_have_attribute("data-state", "refunded")
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1


def test_the_case_page_fits_a_phone(chromium, app_server):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    order = paid_order()
    with strict_page(chromium, width=390, height=844) as page:
        page.goto(app_server.url + "/admin/login/")
        page.get_by_label("Email").fill("ana@backstop.localhost")
        page.get_by_label("Password").fill("a long pass phrase 42")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{app_server.url}/admin/billing/order/{order.pk}/change/")

        width = page.evaluate("document.documentElement.scrollWidth")

        assert width <= 400
        expect(page.locator("#case-recover")).to_be_visible()


def test_the_order_list_fits_a_1280_pixel_screen_with_the_state_visible(console_page, app_server):
    from tests.factories import OrderFactory

    for _ in range(3):
        OrderFactory(email="a.rather.long.customer.address@example-company.com", full_name="Ada Lovelace")

    console_page.goto(app_server.url + "/admin/billing/order/")

    assert console_page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(console_page.locator("th.column-state")).to_be_visible()
    expect(console_page.locator("td.field-state").first).to_have_text("Awaiting payment")
