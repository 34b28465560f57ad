"""Every payment buys something and every word about money is true, in a real browser: a second
year stacks, a $248.00 payment is $248.00 through Refund me now, two tabs at once pay once."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Entitlement
from billing.models import Order, OrderState
from tests.e2e.test_checkout_in_browser import CARD_OK, expect_status, fill_card, pay, start_checkout
from tests.factories import PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def day(moment):
    from django.utils import timezone

    return f"{timezone.localtime(moment):%B %-d, %Y}"


def test_a_second_year_bought_in_the_browser_is_added_after_the_first(page, app_server):
    start_checkout(page, app_server)
    fill_card(page, CARD_OK)
    pay(page)
    expect_status(page, "active")
    first = Order.objects.get()
    first_end = Entitlement.objects.get(order=first).ends_at

    start_over = page.context.new_page()
    start_over.goto(app_server.url + "/checkout/")
    start_over.get_by_label("Email").fill("ada@example.com")
    start_over.get_by_role("button", name="Continue to payment").click()
    expect(start_over.locator("#more-time")).to_contain_text(f"runs until {day(first_end)}")
    start_over.get_by_role("button", name="Yes, add 12 months").click()
    start_over.wait_for_url("**/pay/")
    expect(start_over.locator("#pay-renewal")).to_contain_text(day(first_end))
    start_over.locator("input[name='cardnumber']").wait_for()
    fill_card(start_over, CARD_OK)
    pay(start_over)

    expect_status(start_over, "active")
    second = Order.objects.exclude(pk=first.pk).get()
    second_end = Entitlement.objects.get(order=second).ends_at
    expect(start_over.locator("#status-message")).to_contain_text(f"{day(first_end)} to {day(second_end)}")
    assert Entitlement.objects.get(order=second).starts_at == first_end


def test_a_payment_stripe_took_as_248_is_248_through_refund_me_now(page, app_server):
    PlanFactory(amount_cents=24800)
    page.goto(app_server.url + "/checkout/")
    page.get_by_label("Email").fill("bea@example.com")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url("**/pay/")
    # Our row now disagrees with what Stripe will take: the money is held for a person.
    Order.objects.update(amount_cents=24900)
    page.locator("input[name='cardnumber']").wait_for()
    fill_card(page, CARD_OK)
    pay(page)

    expect_status(page, "attention")
    expect(page.locator("#status-message")).to_contain_text("We have your payment of $248.00")
    expect(page.locator("#status-refund")).to_contain_text("$248.00")
    page.get_by_role("button", name="Refund me now").click()

    expect_status(page, "refunded")
    expect(page.locator("#status-message")).to_contain_text("Your payment of $248.00 has been refunded in full")
    assert "$249.00" not in page.locator("main").inner_text()
    order = Order.objects.get()
    assert order.state == OrderState.REFUNDED
    mails = [m for m in app_server.emails() if order.reference in m and "To: bea@example.com" in m]
    assert mails
    assert [line for m in mails for line in m.splitlines() if "$249.00" in line] == []
    assert any("Refund me now" in m for m in mails)


def test_two_tabs_submitted_at_the_same_moment_pay_one_order(page, app_server):
    PlanFactory()
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto(app_server.url + "/checkout/")
        tab.get_by_label("Email").fill("cy@example.com")

    # Both forms leave before either answer comes back.
    for tab in (page, other):
        tab.evaluate("document.getElementById('checkout-form').requestSubmit()")
    for tab in (page, other):
        tab.wait_for_url(re.compile(r".*/pay/$"))

    assert page.url == other.url
    assert Order.objects.count() == 1
    page.locator("input[name='cardnumber']").wait_for()
    fill_card(page, CARD_OK)
    pay(page)
    expect_status(page, "active")
    other.reload()
    other.wait_for_url("**/orders/**")
    expect_status(other, "active")
