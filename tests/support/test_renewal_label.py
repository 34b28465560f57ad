"""Issue 20, item 5: a renewal is a renewal. A payment checkout offered as adding time
to a proved address's running plan is Order.renewal, labelled so where support and the customer
see the order; "paid twice" is kept for two payments within minutes nobody chose, and no draft is
offered to someone who never wrote."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from billing import services
from billing.models import Order
from support import selectors
from tests.billing.helpers import order_with_payment_intent, pay

pytestmark = pytest.mark.django_db


def active(email="ada@example.com", **fields):
    order = order_with_payment_intent(email=email, **fields)
    pay(order)
    return services.order_settle(order_id=order.id, actor="webhook")


def checkout(client, email, **extra):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "", "nonce": str(uuid.uuid4()),
                                                     **extra})


def test_renew_early_at_checkout_makes_a_renewal_order(client, stripe_emulator):
    first = active()
    client.force_login(first.user)
    client.get(reverse("billing:checkout"))

    checkout(client, "ada@example.com")

    assert Order.objects.exclude(pk=first.pk).get().renewal is True
    assert first.renewal is False


def test_a_stranger_typing_a_customers_address_makes_no_renewal(stripe_emulator):
    active()

    checkout(Client(), "ada@example.com", buy_again="1")

    assert not Order.objects.filter(renewal=True).exists()


def test_a_renewal_is_not_paid_twice_in_the_diagnosis_or_the_queue(stripe_emulator):
    active()
    renewal = active(renewal=True)

    diagnosis = selectors.order_diagnosis(Order.objects.get(pk=renewal.pk))
    queue = [item.title for item in selectors.needs_attention()]

    assert diagnosis.reply != "two_payments"
    assert diagnosis.summary.startswith("Renewal, chosen at checkout")
    assert not any("paid 2 times" in title for title in queue)


def test_a_renewal_is_labelled_in_search_results_and_the_case_header(console, stripe_emulator):
    renewal = active(renewal=True)

    page = console.get(reverse("admin:billing_order_change", args=[renewal.pk])).content.decode()

    assert selectors.console_search("ada@example.com")[0]["title"] == (
        f"{renewal.reference} · Renewal: Paid $249.00, active")
    assert "Renewal: Paid $249.00, active" in page.split('id="case-amount"')[1].split("</span>")[0]


def test_two_payments_within_minutes_without_the_renewal_path_are_still_paid_twice(stripe_emulator):
    active()
    second = active()

    assert selectors.order_diagnosis(Order.objects.get(pk=second.pk)).reply == "two_payments"
    assert any(item.kind == "duplicate" for item in selectors.needs_attention())


def test_two_payments_days_apart_are_not_paid_twice(stripe_emulator):
    first = active()
    Order.objects.filter(pk=first.pk).update(created_at=first.created_at - timedelta(days=3))
    second = active()

    assert selectors.order_diagnosis(Order.objects.get(pk=second.pk)).reply != "two_payments"
    assert not any(item.kind == "duplicate" for item in selectors.needs_attention())


def test_the_paid_twice_case_opens_no_thank_you_for_writing_draft_to_someone_who_never_wrote(console, stripe_emulator):
    active()
    second = active()

    page = console.get(reverse("admin:billing_order_change", args=[second.pk])).content.decode()

    assert "Thank you for writing" not in page.split('id="case-replies"')[1].split("</div>")[0]
    assert 'data-reply="two_payments"' not in page


def test_the_customer_sees_the_renewal_on_the_status_page_and_in_the_confirmation(client, stripe_emulator, mailoutbox,
                                                                                   django_capture_on_commit_callbacks):
    from billing.emails import build_message
    from billing.tokens import order_status_token

    renewal = active(renewal=True)

    page = client.get(reverse("billing:status", kwargs={"token": order_status_token(renewal)})).content.decode()
    confirmation = build_message(renewal.emails.get(kind="confirmation"))

    assert 'id="status-renewal">(renewal)</span>' in page
    assert "12 months (renewal)" in confirmation.body
