"""The flood from one address, in real browsers behind the documented proxy: each browser is its own
client (X-Forwarded-For, as nginx appends it, with TRUSTED_PROXY_COUNT=1). Ten checkouts for Erin's
address from one client pause only that client for that address; Erin, from anywhere else, pays; Erin
signed in or with her Renew link is never held back, not even from the flooding client's address; and
when the per-address cap holds back Find my order or a password link, the page says that nothing was
sent and when to try again, in the same words whether or not the address has an account."""

import contextlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from sesame.utils import get_query_string

from accounts.models import Entitlement
from accounts.views import PASSWORD_RESET_RATE_PER_EMAIL
from billing.models import Order, OrderState
from billing.tokens import renew_token
from billing.views import CHECKOUT_RATE_PER_CLIENT_AND_EMAIL, LOOKUP_RATE_PER_EMAIL
from outbox.models import OutboundEmail
from tests.browser import strict_page
from tests.factories import OrderFactory, PlanFactory, UserFactory
from tests.ratelimits import counting_afresh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ERIN = "erin@example.com"
NOBODY = "nobody@example.com"
FLOODER = "203.0.113.5"
ERINS_HOME = "198.51.100.20"
PAUSED = "paused new ones"
# Ten browser checkouts take a while on a busy machine: start counting with a window that outlasts them.
WINDOW_MARGIN = 120


@pytest.fixture
def server(monkeypatch, request):
    """The app behind one trusted proxy, so that each browser's X-Forwarded-For is its client address."""
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    return request.getfixturevalue("app_server")


@contextlib.contextmanager
def browser_from(chromium, server, address):
    """A fresh browser (its own cookies) whose requests reach the app from `address`, as the proxy
    in front of it would say. Only the app's requests carry the header: sent to Stripe.js's origin,
    a header the page did not set would fail its CORS check and the card form would not load."""
    def through_the_proxy(route):
        route.continue_(headers={**route.request.headers, "x-forwarded-for": address})

    with strict_page(chromium) as page:
        page.context.route(f"{server.url}/**", through_the_proxy)
        yield page


def checkout(page, server, email=ERIN):
    page.goto(server.url + "/checkout/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill("Erin Example")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_load_state()


def flood_checkouts(chromium, server, times=10):
    """A stranger's `times` checkouts for Erin's address from one client; then the next one is paused."""
    with browser_from(chromium, server, FLOODER) as stranger:
        for _ in range(times):
            checkout(stranger, server)
            assert PAUSED not in stranger.content()
        checkout(stranger, server)
        expect(stranger.get_by_role("alert")).to_contain_text(PAUSED)


def erin_with_a_running_plan():
    plan = PlanFactory()
    erin = UserFactory(email=ERIN, full_name="Erin Example")
    erin.set_unusable_password()  # she signs in by the links we email her
    erin.save()
    ends_at = timezone.now() + timedelta(days=20)
    order = OrderFactory(plan=plan, user=erin, email=ERIN, state=OrderState.ACTIVE,
                         paid_at=ends_at - timedelta(days=365), stripe_payment_intent_id="pi_erinsfirstpayment000001")
    Entitlement.objects.create(user=erin, order=order, plan=plan, starts_at=order.paid_at, ends_at=ends_at)
    return erin


def expect_the_card_form(page):
    page.wait_for_url("**/pay/")
    expect(page.locator("input[name='cardnumber']")).to_be_visible()
    assert PAUSED not in page.content()


def test_ten_checkouts_for_erin_from_one_address_leave_erin_free_to_pay_from_another(chromium, server):
    PlanFactory()
    counting_afresh(rate=CHECKOUT_RATE_PER_CLIENT_AND_EMAIL, value=f"{FLOODER}|{ERIN}", margin_seconds=WINDOW_MARGIN)
    flood_checkouts(chromium, server)

    with browser_from(chromium, server, ERINS_HOME) as page:
        checkout(page, server)
        expect_the_card_form(page)
        page.locator("input[name='cardnumber']").fill("4242424242424242")
        page.locator("input[name='exp-date']").fill("12 / 34")
        page.locator("input[name='cvc']").fill("123")
        page.locator("#pay-button").click()

        page.wait_for_url("**/orders/**")
        expect(page.locator("#order-status")).to_have_attribute("data-status-code", "active", timeout=20_000)
    paid = Order.objects.get(email=ERIN, state=OrderState.ACTIVE)
    assert Entitlement.objects.filter(order=paid).exists()


def open_signin_link(page, server, erin):
    page.goto(server.url + "/account/signin/" + get_query_string(erin))
    page.goto(server.url + "/checkout/")


def open_renew_link(page, server, erin):
    page.goto(server.url + "/checkout/?renew=" + renew_token(erin))


@pytest.mark.parametrize("proof", [open_signin_link, open_renew_link], ids=["signed in by link", "Renew link"])
def test_after_the_flood_erin_proving_her_address_is_never_paused_even_from_the_flooding_address(
    chromium, server, proof
):
    erin = erin_with_a_running_plan()
    counting_afresh(rate=CHECKOUT_RATE_PER_CLIENT_AND_EMAIL, value=f"{FLOODER}|{ERIN}", margin_seconds=WINDOW_MARGIN)
    flood_checkouts(chromium, server)

    with browser_from(chromium, server, FLOODER) as page:
        proof(page, server, erin)
        expect(page.get_by_label("Email")).to_have_value(ERIN)
        page.get_by_role("button", name="Continue to payment").click()

        expect_the_card_form(page)


# (path, button, the notice's id, the page's answer when something was sent)
FIND_MY_ORDER = ("/orders/lookup/", "Email me the link", "#lookup-capped", "Check your email")
PASSWORD_LINK = ("/account/password/reset/", "Email me a link", "#password-reset-capped", "Check your email")


def ask(chromium, server, form, email, address):
    """One request on `form` for `email` from a fresh browser at `address`; the page's text and notice."""
    path, button, notice, _sent = form
    with browser_from(chromium, server, address) as page:
        page.goto(server.url + path)
        page.get_by_label("Email address").fill(email)
        page.get_by_role("button", name=button).click()
        page.wait_for_load_state()
        capped = page.locator(notice)
        return page.inner_text("body"), capped.inner_text() if capped.count() else None


def five_strangers_ask(chromium, server, form, email, block):
    """Five requests for `email` from five clients: all the address is answered in a day."""
    for i in range(5):
        _text, notice = ask(chromium, server, form, email, f"10.0.{block}.{i + 1}")
        assert notice is None


@pytest.mark.parametrize("form", [FIND_MY_ORDER, PASSWORD_LINK], ids=["Find my order", "password link"])
def test_once_the_address_cap_holds_a_request_back_the_page_says_nothing_was_sent_and_when_to_try_again(
    chromium, server, form
):
    erin_with_a_running_plan()
    rate = LOOKUP_RATE_PER_EMAIL if form is FIND_MY_ORDER else PASSWORD_RESET_RATE_PER_EMAIL
    counting_afresh(rate=rate, value=ERIN, margin_seconds=WINDOW_MARGIN)

    five_strangers_ask(chromium, server, form, ERIN, block=1)
    emails_before = OutboundEmail.objects.filter(recipient=ERIN).count()
    text, notice = ask(chromium, server, form, ERIN, ERINS_HOME)

    assert notice is not None, text
    assert "We haven't sent an email this time" in notice
    assert re.search(r"Please try again in about \d+ (minute|minutes|hours)\b", notice), notice
    assert form[3] not in text
    assert OutboundEmail.objects.filter(recipient=ERIN).count() == emails_before


@pytest.mark.parametrize("form", [FIND_MY_ORDER, PASSWORD_LINK], ids=["Find my order", "password link"])
def test_the_capped_page_reads_the_same_for_an_address_with_an_account_and_one_without(chromium, server, form):
    erin_with_a_running_plan()
    rate = LOOKUP_RATE_PER_EMAIL if form is FIND_MY_ORDER else PASSWORD_RESET_RATE_PER_EMAIL
    counting_afresh(rate=rate, value=ERIN, margin_seconds=WINDOW_MARGIN)
    counting_afresh(rate=rate, value=NOBODY, margin_seconds=WINDOW_MARGIN)

    five_strangers_ask(chromium, server, form, ERIN, block=1)
    _text, erins = ask(chromium, server, form, ERIN, ERINS_HOME)
    five_strangers_ask(chromium, server, form, NOBODY, block=2)
    _text, nobodys = ask(chromium, server, form, NOBODY, ERINS_HOME)

    def without_the_time(notice):
        return re.sub(r"in about \d+ \w+", "in about …", notice)

    assert erins is not None
    assert without_the_time(erins) == without_the_time(nobodys)


def test_a_customer_with_two_orders_gets_her_own_lookup_email_after_strangers_looked_her_up(
    chromium, server
):
    erin = erin_with_a_running_plan()
    OrderFactory(plan=Order.objects.get().plan, user=erin, email=ERIN, state=OrderState.ACTIVE,
                 paid_at=timezone.now() - timedelta(days=30), stripe_payment_intent_id="pi_erinssecondpayment00001")
    counting_afresh(rate=LOOKUP_RATE_PER_EMAIL, value=ERIN, margin_seconds=WINDOW_MARGIN)
    for i in range(3):
        ask(chromium, server, FIND_MY_ORDER, ERIN, f"10.0.3.{i + 1}")
    emails_before = OutboundEmail.objects.filter(recipient=ERIN).count()

    text, _notice = ask(chromium, server, FIND_MY_ORDER, ERIN, ERINS_HOME)

    sent = OutboundEmail.objects.filter(recipient=ERIN).count() > emails_before
    assert sent or "Check your email" not in text
