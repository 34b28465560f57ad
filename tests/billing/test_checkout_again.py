"""One customer, one purchase: checkout recognises an address that already bought the plan, and
catches a mistyped email domain before any money moves."""

import uuid

import pytest
import stripe
from django.urls import reverse

from billing import services
from billing.models import Order, OrderState
from tests.billing.helpers import pay
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def checkout(client, email="ana@example.com", **extra):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "Ana", "nonce": str(uuid.uuid4()),
                                                     **extra})


def first_order(client, email="ana@example.com"):
    PlanFactory()
    checkout(client, email)
    return Order.objects.get(email=email)


def test_a_customer_whose_first_payment_went_through_is_not_offered_a_second_card_form(client, stripe_emulator):
    order = first_order(client)
    pay(order)  # charged; webhooks held, our order still says pending

    response = checkout(client)

    assert response.status_code == 200
    page = response.content.decode()
    # The account is wholly this browser's doing: it is asked what one more payment would add.
    assert "Your Annual plan is still running" in page
    assert 'id="payment-element"' not in page
    assert Order.objects.count() == 1
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE  # checked with Stripe before answering


def test_the_same_browser_gets_its_order_link_and_a_stranger_only_an_email_to_the_owner(
    client, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    from django.test import Client

    order = first_order(client)
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook")
    stranger = Client()

    with django_capture_on_commit_callbacks(execute=True):
        page = checkout(stranger).content.decode()

    assert "We've emailed <strong>ana@example.com</strong> to say so" in page
    assert order.reference not in page
    assert "until" not in page  # a stranger learns nothing about the owner's plan
    assert any(m.to == ["ana@example.com"] and order.reference in m.body for m in mailoutbox)
    assert order.reference in checkout(client).content.decode()


def test_buying_again_is_possible_as_a_deliberate_choice(client, stripe_emulator):
    order = first_order(client)
    pay(order)

    # From the browser whose payment made the account (a stranger's browser gets no such choice:
    # tests/billing/test_access_is_proved.py).
    response = checkout(client, buy_again="1", email_confirmed="1")

    assert response.status_code == 302
    assert Order.objects.count() == 2


def test_a_customer_back_at_checkout_with_an_unpaid_order_returns_to_the_same_payment(client, stripe_emulator):
    first_order(client)

    response = checkout(client)

    assert response.status_code == 302
    assert Order.objects.count() == 1
    assert response.url.endswith("/pay/")
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_an_expired_plan_can_be_bought_again_without_a_warning(client, stripe_emulator):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Entitlement

    order = first_order(client)
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook")
    Entitlement.objects.filter(order=order).update(starts_at=timezone.now() - timedelta(days=400),
                                                   ends_at=timezone.now() - timedelta(days=35))

    response = checkout(client)

    assert response.status_code == 302
    assert Order.objects.count() == 2


def test_a_mistyped_email_domain_is_questioned_before_any_order_is_made(client, stripe_emulator):
    PlanFactory()

    page = checkout(client, email="ana@gmial.con").content.decode()

    assert "Did you mean ana@gmail.com?" in page
    assert not Order.objects.exists()


def test_the_customer_may_keep_an_address_we_questioned(client, stripe_emulator):
    PlanFactory()

    response = checkout(client, email="ana@gmial.con", email_confirmed="1")

    assert response.status_code == 302
    assert Order.objects.get().email == "ana@gmial.con"


@pytest.mark.parametrize(("typed", "suggested"), [
    ("ana@gmial.con", "ana@gmail.com"), ("bob@hotnail.com", "bob@hotmail.com"), ("c@yahooo.com", "c@yahoo.com"),
    ("d@outlok.com", "d@outlook.com"), ("e@icloud.con", "e@icloud.com"), ("f@gmail.co", "f@gmail.com"),
])
def test_common_domain_typos_get_a_suggestion(typed, suggested):
    from accounts.email_typos import suggest_email

    assert suggest_email(typed) == suggested


@pytest.mark.parametrize("email", ["ana@gmail.com", "ana@example.com", "ana@company.io", "ana@gmx.de", "ana@mail.com"])
def test_addresses_that_look_right_get_no_suggestion(email):
    from accounts.email_typos import suggest_email

    assert suggest_email(email) is None


def test_the_thank_you_page_takes_the_buyer_into_their_account_in_the_browser_that_bought(client, stripe_emulator):
    from billing.tokens import order_status_token

    order = first_order(client)
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook")
    token = order_status_token(order)
    assert "Go to your account" in client.get(reverse("billing:status", kwargs={"token": token})).content.decode()

    response = client.post(reverse("billing:status-signin", kwargs={"token": token}))

    assert response.url == reverse("accounts:home")
    assert client.get(reverse("accounts:home")).status_code == 200


def test_another_browser_with_the_status_link_is_not_signed_in(client, stripe_emulator):
    from django.test import Client

    from billing.tokens import order_status_token

    order = first_order(client)
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook")
    other = Client()

    other.post(reverse("billing:status-signin", kwargs={"token": order_status_token(order)}))

    assert "_auth_user_id" not in other.session
