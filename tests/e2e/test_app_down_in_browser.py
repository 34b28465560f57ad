"""What a customer's browser shows when the app server dies: the demo's proxy (as nginx in production)
answers with the "briefly unavailable" page, never the browser's own "this site can't be reached"."""

import pytest
from playwright.sync_api import expect

from config.errors import unavailable_page
from scripts.demo_proxy import DemoProxy
from tests.browser import strict_page
from tests.factories import PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def proxy(app_server):
    proxy = DemoProxy(("127.0.0.1", 0), ("127.0.0.1", app_server.port), unavailable_page().encode()).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def phone(chromium):
    with strict_page(chromium, width=360, height=740) as page:
        yield page


def test_a_customer_whose_app_server_dies_sees_the_briefly_unavailable_page_and_then_the_shop_again(
    phone, app_server, proxy, settings
):
    PlanFactory()
    phone.goto(proxy.url + "/")
    expect(phone.locator("#home-buy")).to_be_visible()

    app_server.kill()
    response = phone.reload()

    assert response.status == 502
    expect(phone.get_by_role("heading", level=1)).to_have_text("We're briefly unavailable")
    expect(phone.locator("#unavailable-payment")).to_contain_text("may or may not have been charged")
    expect(phone.locator("#unavailable-lookup")).to_have_attribute("href", "/orders/lookup/")
    expect(phone.locator("#unavailable-support")).to_have_text(settings.SUPPORT_EMAIL)

    app_server.start()

    # The page tries the same address again by itself (a "Try again now" link too): the shop is back.
    expect(phone.locator("#home-buy")).to_be_visible(timeout=30_000)


def test_on_a_phone_the_header_shows_buy_sign_in_and_find_my_order_without_scrolling_sideways(phone, app_server):
    PlanFactory()
    phone.goto(app_server.url + "/checkout/")

    for name in ("Buy", "Sign in", "Find my order"):
        link = phone.locator("header nav").get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
