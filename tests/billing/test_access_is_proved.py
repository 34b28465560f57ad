"""An address is a claim, not an identity: a stranger who checks out with a customer's address and
pays is never let into that customer's account, and learns nothing of it (no dates of other
payments, no company or VAT number); receipts print the buyer details frozen on their own order and
name the period the payment covers."""

import html
import io
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from accounts.models import Entitlement
from billing import services
from billing.models import Order, OrderState
from billing.selectors import customer_day
from billing.tokens import order_status_token, renew_token
from tests.billing.helpers import pay
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

BOB = "bob@example.com"


def checkout(client, email=BOB, **extra):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "Someone", "nonce": str(uuid.uuid4()),
                                                     "email_confirmed": "1", **extra})


def buy(client, email=BOB, **extra) -> Order:
    """Check out in `client` and pay with Stripe's test card; the order ends active."""
    before = set(Order.objects.values_list("id", flat=True))
    response = checkout(client, email, **extra)
    (order,) = Order.objects.exclude(id__in=before)
    assert response.status_code == 302, response.content.decode()
    pay(order)
    return services.order_settle(order_id=order.id, actor="webhook")


@pytest.fixture
def bob(stripe_emulator):
    """Bob bought the plan in his own browser and keeps a company and VAT number on his account."""
    PlanFactory()
    order = buy(Client())
    user = order.user
    user.company_name, user.vat_number = "Bob's Bakery Ltd", "GB999999973"
    user.save()
    return order


def end_plan(order):
    Entitlement.objects.filter(order=order).update(starts_at=timezone.now() - timedelta(days=400),
                                                   ends_at=timezone.now() - timedelta(days=35))


def page(client, name, order):
    return html.unescape(client.get(reverse(name, kwargs={"token": order_status_token(order)})).content.decode())


def signs_in(client, order):
    client.post(reverse("billing:status-signin", kwargs={"token": order_status_token(order)}))
    return "_auth_user_id" in client.session


# --- Bob's plan runs: a hidden buy_again skips nothing -------------------------------------------


def test_a_stranger_adding_buy_again_for_a_running_plan_gets_no_card_form(bob):
    stranger = Client()

    response = checkout(stranger, buy_again="1")

    assert response.status_code == 200
    text = response.content.decode()
    assert "This email address already has the" in text
    assert customer_day(Entitlement.objects.get(order=bob).ends_at) not in text
    assert Order.objects.count() == 1


def test_a_customer_with_a_renew_link_may_buy_again(bob):
    customer = Client()
    token = renew_token(bob.user)

    response = checkout(customer, renew=token, buy_again="1")

    assert response.status_code == 302
    assert Order.objects.count() == 2


def test_a_stranger_who_paid_earlier_in_their_browser_still_learns_no_dates_at_checkout(bob):
    stranger = Client()
    end_plan(bob)
    mine = buy(stranger)  # went to Bob's account

    text = checkout(stranger, buy_again="1").content.decode()

    assert mine.state == OrderState.ACTIVE
    assert customer_day(Entitlement.objects.get(order=mine).ends_at) not in text
    assert Order.objects.count() == 2


# --- Bob's plan ended or was refunded: the stranger pays, and gets nothing of Bob's ----------------


@pytest.mark.parametrize("how", ["ended", "refunded"])
@pytest.mark.parametrize("hidden", [{"buy_again": "1"}, {}])
def test_a_stranger_who_pays_with_bobs_address_is_not_signed_in_as_bob(bob, how, hidden):
    if how == "ended":
        end_plan(bob)
    else:
        services.order_refund(order_id=bob.id, actor="support", reason="asked")
    stranger = Client()

    mine = buy(stranger, **hidden)

    assert mine.user == bob.user  # the time went to the account of that address
    assert not signs_in(stranger, mine)
    assert stranger.get(reverse("accounts:home")).status_code == 302
    bob.user.refresh_from_db()
    assert not bob.user.has_usable_password()


def test_the_strangers_status_page_says_where_the_time_went_and_nothing_of_the_account(bob):
    end_plan(bob)
    stranger = Client()
    mine = buy(stranger)

    text = page(stranger, "billing:status", mine)

    assert "We've added 12 months to the plan of the account for this address and emailed it" in text
    assert "sign in with the link we emailed" in text
    assert "status-signin-button" not in text
    assert customer_day(Entitlement.objects.get(order=mine).ends_at) not in text
    assert "Bob's Bakery" not in text
    assert "GB999999973" not in text


def test_the_strangers_status_api_says_no_dates_of_the_account(bob):
    end_plan(bob)
    stranger = Client()
    mine = buy(stranger)

    body = stranger.get(reverse("billing:status-api", kwargs={"token": order_status_token(mine)})).json()

    assert body["message"].endswith("We've added 12 months to the plan of the account for this address and emailed it.")


def test_a_payment_stacked_after_bobs_plan_does_not_show_bobs_end_date_to_the_browser_that_paid(bob):
    # Bob's address, paid while his plan runs (from a browser that never proved it: e.g. two
    # checkouts at once before the first was paid).
    stranger = Client()
    other = services.order_create(plan=bob.plan, email=BOB, full_name="Stranger", checkout_nonce=uuid.uuid4())
    services.order_prepare_payment(order=other)
    other.refresh_from_db()
    pay(other)
    other = services.order_settle(order_id=other.id, actor="webhook")
    session = stranger.session
    session["billing:orders"] = [other.public_id.hex]
    session.save()
    bobs_end = customer_day(Entitlement.objects.get(order=bob).ends_at)

    status_page = page(stranger, "billing:status", other)
    receipt_page = page(stranger, "billing:receipt", other)

    assert bobs_end not in status_page
    assert bobs_end not in receipt_page
    assert "Adds 12 months to the plan of the account for this address" in receipt_page


def test_the_strangers_receipt_prints_none_of_bobs_details(bob):
    end_plan(bob)
    stranger = Client()
    mine = buy(stranger)

    text = page(stranger, "billing:receipt", mine)

    assert "Bob's Bakery" not in text
    assert "GB999999973" not in text


# --- The browser that created the account ------------------------------------------------------


def test_the_browser_whose_order_created_the_account_goes_in_with_one_click(stripe_emulator):
    PlanFactory()
    buyer = Client()
    order = buy(buyer, "carol@example.com")

    assert "status-signin-button" in page(buyer, "billing:status", order)
    assert signs_in(buyer, order)


def test_a_one_click_session_ends_once_another_payment_is_on_the_account(stripe_emulator):
    PlanFactory()
    buyer = Client()
    order = buy(buyer, "carol@example.com")
    signs_in(buyer, order)
    end_plan(order)
    buy(Client(), "carol@example.com")  # Carol's later payment, from elsewhere

    response = buyer.get(reverse("accounts:home"))

    assert response.status_code == 302
    assert reverse("accounts:login") in response.url


def test_the_browser_that_made_the_account_keeps_its_one_click_session_after_buying_a_second_year(stripe_emulator):
    PlanFactory()
    buyer = Client()
    first = buy(buyer, "carol@example.com")
    signs_in(buyer, first)

    second = buy(buyer, "carol@example.com", buy_again="1")

    assert second.user == first.user
    assert buyer.get(reverse("accounts:home")).status_code == 200


def test_a_staff_address_is_never_entered_with_one_click(stripe_emulator, django_user_model):
    PlanFactory()
    django_user_model.objects.create_user(email="ops@example.com", is_staff=True)
    buyer = Client()

    order = buy(buyer, "ops@example.com")

    assert not signs_in(buyer, order)


# --- Receipts: frozen details, their own period --------------------------------------------------


def test_adding_a_vat_number_later_does_not_rewrite_a_receipt_already_issued(bob):
    bob.user.company_name, bob.user.vat_number = "", ""
    bob.user.save()

    before = page(Client(), "billing:receipt", bob)
    bob.user.company_name, bob.user.vat_number = "Bob's Bakery Ltd", "GB999999973"
    bob.user.save()
    after = page(Client(), "billing:receipt", bob)

    assert "GB999999973" not in after
    assert "Bob's Bakery" not in after
    assert 'id="receipt-vat"' not in before
    assert 'id="receipt-vat"' not in after


def test_a_renewal_by_renew_link_prints_the_accounts_details_as_they_were_at_checkout(bob):
    customer = Client()
    token = renew_token(bob.user)
    renewal = buy(customer, renew=token, buy_again="1")
    bob.user.vat_number = "GB000000000"
    bob.user.save()

    text = page(Client(), "billing:receipt", renewal)

    assert "Bob's Bakery Ltd" in text
    assert "GB999999973" in text
    assert "GB000000000" not in text


def test_a_receipt_names_the_period_its_payment_covers(bob):
    entitlement = Entitlement.objects.get(order=bob)

    text = page(Client(), "billing:receipt", bob)

    assert f"Access: {customer_day(entitlement.starts_at)} to {customer_day(entitlement.ends_at)}." in text


def test_the_pdf_receipt_names_the_period_too(bob):
    entitlement = Entitlement.objects.get(order=bob)
    response = Client().get(reverse("billing:receipt-pdf", kwargs={"token": order_status_token(bob)}))

    words = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert f"Access: {customer_day(entitlement.starts_at)} to {customer_day(entitlement.ends_at)}." in words


def test_a_refunded_payments_receipt_says_its_access_was_withdrawn(bob):
    services.order_refund(order_id=bob.id, actor="support", reason="asked")

    text = page(Client(), "billing:receipt", bob)

    assert "The access it bought was withdrawn on" in text
    assert "Access: " not in text


def test_the_status_api_gives_the_dates_to_a_customer_signed_in_with_the_emailed_link(bob):
    from sesame.utils import get_query_string

    end_plan(bob)
    later = buy(Client())  # a later payment, made elsewhere: the account is not this browser's doing
    customer = Client()
    customer.get(reverse("accounts:signin") + get_query_string(bob.user))

    body = customer.get(reverse("billing:status-api", kwargs={"token": order_status_token(later)})).json()

    assert customer_day(Entitlement.objects.get(order=later).ends_at) in body["message"]


def test_when_two_browsers_pay_for_a_new_address_neither_goes_in_with_one_click(stripe_emulator):
    PlanFactory()
    first, second = Client(), Client()
    orders = []
    for client in (first, second):
        checkout(client, "dana@example.com")
        orders.append(Order.objects.filter(email="dana@example.com").latest("created_at"))
    for order in orders:
        pay(order)
    orders = [services.order_settle(order_id=o.id, actor="webhook") for o in orders]

    assert orders[0].user == orders[1].user
    assert not signs_in(first, orders[0])
    assert not signs_in(second, orders[1])
