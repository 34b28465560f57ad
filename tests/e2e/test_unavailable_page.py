"""The "briefly unavailable" page (templates/50x.html, served by the proxy while the app is down)
says what Stripe told the customer's browser on its way back from paying, and tries again by itself."""

import pytest
from playwright.sync_api import expect

from config.errors import unavailable_page
from scripts.demo_proxy import DemoProxy
from tests.browser import strict_page
from tests.factories import PlanFactory
from tests.ports import free_port

pytestmark = pytest.mark.browser

RETURN = "/orders/status/abc/?payment_intent=pi_3Q2MQ0D4xyz&payment_intent_client_secret=pi_3Q2MQ0D4xyz_secret_1"


@pytest.fixture
def proxy_to_nothing():
    """The proxy in front of an app server that is down: every page is the 50x page."""
    proxy = DemoProxy(("127.0.0.1", 0), ("127.0.0.1", free_port()), unavailable_page().encode()).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def phone(chromium):
    with strict_page(chromium, width=360, height=740) as page:
        yield page


def visible_text(page) -> str:
    return " ".join(page.locator("main").inner_text().split())


def test_after_stripe_said_succeeded_the_page_says_the_payment_went_through_and_we_are_finishing(
    phone, proxy_to_nothing
):
    phone.goto(proxy_to_nothing.url + RETURN + "&redirect_status=succeeded")

    expect(phone.locator("#told-succeeded")).to_be_visible()
    text = visible_text(phone)
    assert "Stripe told your browser the payment succeeded; we're finishing your order." in text
    assert "may or may not have been charged" not in text


def test_after_stripe_said_processing_the_page_says_the_bank_has_not_confirmed_yet(phone, proxy_to_nothing):
    phone.goto(proxy_to_nothing.url + RETURN + "&redirect_status=processing")

    expect(phone.locator("#told-processing")).to_be_visible()
    text = visible_text(phone)
    assert "Stripe told your browser the payment is still being processed" in text
    assert "may or may not have been charged" not in text


def test_after_stripe_said_the_card_failed_the_page_says_nothing_was_charged(phone, proxy_to_nothing):
    phone.goto(proxy_to_nothing.url + RETURN + "&redirect_status=requires_payment_method")

    expect(phone.locator("#told-requires_payment_method")).to_be_visible()
    text = visible_text(phone)
    assert "Stripe told your browser the payment did not go through: your card was not charged for it." in text
    assert "may or may not have been charged" not in text


def test_without_word_from_stripe_the_page_says_only_what_we_know(phone, proxy_to_nothing):
    phone.goto(proxy_to_nothing.url + "/checkout/")

    expect(phone.locator("#unavailable-payment")).to_be_visible()
    text = visible_text(phone)
    assert "Your card may or may not have been charged" in text
    assert "Stripe told your browser" not in text


def test_a_status_stripe_never_sends_is_not_believed(phone, proxy_to_nothing):
    phone.goto(proxy_to_nothing.url + RETURN + '&redirect_status="]<b>succeeded')

    expect(phone.locator("#unavailable-payment")).to_be_visible()
    assert "Stripe told your browser" not in visible_text(phone)


def test_the_page_shows_when_it_will_try_again_and_a_link_to_try_now(phone, proxy_to_nothing):
    phone.goto(proxy_to_nothing.url + RETURN + "&redirect_status=succeeded")

    expect(phone.locator("#retry")).to_contain_text("We'll try again by ourselves in")
    expect(phone.get_by_role("link", name="Try again now")).to_be_visible()


@pytest.mark.django_db(transaction=True)
def test_once_the_app_is_back_the_page_reloads_by_itself_to_the_same_address(phone, app_server):
    PlanFactory()
    proxy = DemoProxy(("127.0.0.1", 0), ("127.0.0.1", app_server.port), unavailable_page().encode()).start()
    try:
        app_server.kill()
        phone.goto(proxy.url + "/?payment_intent=pi_123&redirect_status=succeeded")
        expect(phone.locator("#told-succeeded")).to_be_visible()

        app_server.start()

        expect(phone.locator("#home-buy")).to_be_visible(timeout=30_000)  # nobody clicked
        assert phone.url.endswith("/?payment_intent=pi_123&redirect_status=succeeded")
    finally:
        proxy.stop()
