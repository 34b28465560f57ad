"""A customer leaves the bank's 3-D Secure check: told "not charged" with a way to finish, the sweep
cancels the attempt in Stripe, and the customer starts again and pays."""

from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Order, OrderState
from billing.tokens import order_status_token
from tests.e2e.test_checkout_in_browser import CARD_3DS, CARD_OK, expect_status, fill_card, pay, start_checkout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_who_left_the_bank_check_is_told_not_charged_then_canceled_then_pays(page, app_server):
    start_checkout(page, app_server, email="eu@example.com")
    fill_card(page, CARD_3DS)
    pay(page)
    expect(page.locator("#stripe-emulator-3ds-modal")).to_be_visible()
    order = Order.objects.get()
    status_url = app_server.url + reverse("billing:status", kwargs={"token": order_status_token(order)})
    browser = page.context
    page.close()  # the customer closes the bank's window, and the tab with it

    status = browser.new_page()
    status.goto(status_url)

    expect_status(status, "not_charged")
    expect(status.locator("#status-headline")).to_contain_text("Not charged")
    expect(status.locator("#status-message")).to_contain_text("nothing has been taken")
    expect(status.locator("#status-pay-link")).to_have_text("Finish paying")
    expect(status.locator("#status-working")).to_be_hidden()
    assert Order.objects.get().state == OrderState.PENDING

    # An hour later (the order's clock moved back instead of waiting), the sweep cancels it in Stripe.
    Order.objects.filter(pk=order.pk).update(payment_status_at=timezone.now() - timedelta(hours=2))
    call_command("reconcile", stdout=StringIO(), stderr=StringIO())
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "canceled"

    status.reload()
    expect_status(status, "canceled")
    expect(status.locator("#status-headline")).to_contain_text("you have not been charged")
    status.locator("#status-again-link").click()
    status.get_by_label("Email").fill("eu@example.com")
    status.get_by_role("button", name="Continue to payment").click()
    status.wait_for_url("**/pay/")
    fill_card(status, CARD_OK)
    pay(status)

    expect_status(status, "active")
    assert sorted(Order.objects.values_list("state", flat=True)) == [OrderState.ACTIVE, OrderState.CANCELED]


def test_finish_paying_takes_the_customer_back_to_the_same_bank_check_and_it_pays(page, app_server):
    start_checkout(page, app_server, email="eu@example.com")
    fill_card(page, CARD_3DS)
    pay(page)
    expect(page.locator("#stripe-emulator-3ds-modal")).to_be_visible()
    order = Order.objects.get()
    browser = page.context
    page.close()  # the bank's window closed with the tab
    status = browser.new_page()
    status.goto(app_server.url + reverse("billing:status", kwargs={"token": order_status_token(order)}))

    status.locator("#status-pay-link").click()
    status.locator("#payment-bank-check-button").click()
    status.frame_locator("#stripe-emulator-3ds-modal iframe").get_by_role("button", name="Complete").click()

    expect_status(status, "active")
    assert Order.objects.count() == 1
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 1
