"""A stranger in a real browser checks out with Bob's address and adds a hidden buy_again=1 by hand:
while Bob's plan runs there is no card form; once it has ended the stranger may pay, the time goes
to the account of that address, and the stranger is told so without any of the account's details
and is not let into it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Entitlement
from billing.models import Order, OrderState
from tests.factories import OrderFactory, PlanFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BOB = "bob@example.com"


def bob_bought(*, ends_in: timedelta):
    plan = PlanFactory()
    bob = UserFactory(email=BOB, password="!", company_name="Bob's Bakery Ltd", vat_number="GB999999973")
    ends_at = timezone.now() + ends_in
    order = OrderFactory(plan=plan, user=bob, email=BOB, state=OrderState.ACTIVE, paid_at=ends_at - timedelta(days=365))
    Entitlement.objects.create(user=bob, order=order, plan=plan, starts_at=order.paid_at, ends_at=ends_at)
    return order, ends_at


def checkout_with_a_hidden_buy_again(page, server):
    page.goto(server.url + "/checkout/")
    page.get_by_label("Email").fill(BOB)
    page.get_by_label("Name").fill("Not Bob")
    # What the stranger did by hand in the developer tools.
    page.evaluate("""() => {
        const form = document.querySelector("input[name='nonce']").form;
        for (const [name, value] of [["buy_again", "1"], ["email_confirmed", "1"]]) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
        }
    }""")
    page.get_by_role("button", name="Continue to payment").click()


def test_while_bobs_plan_runs_a_hidden_buy_again_gets_no_card_form_and_no_dates(page, app_server):
    _order, ends_at = bob_bought(ends_in=timedelta(days=200))

    checkout_with_a_hidden_buy_again(page, app_server)

    expect(page.locator("#already-bought")).to_contain_text("nothing has been charged")
    expect(page.locator("input[name='cardnumber']")).to_have_count(0)
    assert f"{timezone.localtime(ends_at):%B %-d, %Y}" not in page.content()
    assert Order.objects.count() == 1


def test_a_stranger_who_pays_after_bobs_plan_ended_is_told_where_the_time_went_and_is_not_let_in(page, app_server):
    bob_bought(ends_in=-timedelta(days=30))

    checkout_with_a_hidden_buy_again(page, app_server)
    page.wait_for_url("**/pay/")
    page.locator("input[name='cardnumber']").fill("4242424242424242")
    page.locator("input[name='exp-date']").fill("12 / 34")
    page.locator("input[name='cvc']").fill("123")
    page.locator("#pay-button").click()

    page.wait_for_url("**/orders/**")
    expect(page.locator("#order-status")).to_have_attribute("data-status-code", "active", timeout=20_000)
    page.reload()  # the page as it is rendered now the order is active
    expect(page.locator("#status-message")).to_contain_text(
        "We've added 12 months to the plan of the account for this address and emailed it")
    expect(page.locator("#status-added-to-account")).to_contain_text("sign in with the link we emailed")
    expect(page.locator("#status-signin-button")).to_have_count(0)
    text = page.content()
    assert "Bob's Bakery" not in text
    assert "GB999999973" not in text
    page.goto(app_server.url + "/account/")
    expect(page).to_have_url(f"{app_server.url}/account/login/?next=/account/")
    stranger_order = Order.objects.exclude(paid_at__lt=timezone.now() - timedelta(days=1)).get(full_name="Not Bob")
    assert stranger_order.user.email == BOB
