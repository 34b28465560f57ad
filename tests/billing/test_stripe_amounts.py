"""Amounts are Stripe's: a payment Stripe took as $248.00 for a $249.00 order is $248.00 on every
page and in every email the customer gets, and the refund email does not contradict itself."""

import pytest
import stripe
from django.urls import reverse

from billing import services
from billing.models import Order, OrderRefund
from billing.tokens import order_status_token
from tests.billing.helpers import paid_order, stripe_event_for

pytestmark = pytest.mark.django_db


def held_for_248(email="ana@example.com"):
    """Stripe took $248.00; our order says $249.00: the money is held for a person to look at."""
    order = paid_order(email=email, amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    return services.order_settle(order_id=order.id, actor="webhook")


def emails_to(mailoutbox, address):
    return [m for m in mailoutbox if m.to == [address]]


def status_url(order):
    return reverse("billing:status", kwargs={"token": order_status_token(order)})


def test_settle_records_what_stripe_took_and_in_which_currency(stripe_emulator):
    order = held_for_248()

    assert (order.amount_received_cents, order.received_currency) == (24800, "usd")
    assert order.paid_display == "$248.00"
    assert order.amount_display == "$249.00"


def test_the_status_page_says_the_amount_stripe_took(client, stripe_emulator):
    order = held_for_248()

    page = client.get(status_url(order)).content.decode()

    assert "We have your payment of $248.00" in page
    assert "$249.00" not in page


def test_the_held_money_email_says_the_amount_stripe_took_and_names_refund_me_now(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = held_for_248()

    (message,) = emails_to(mailoutbox, order.email)
    html = message.alternatives[0][0]
    for body in (message.body, html):
        assert "We received your payment of" in body
        assert "$248.00" in body
        assert "$249.00" not in body
        assert "Refund me now" in body
    assert "being set up" not in message.body  # nothing sets it up on its own: a person checks it
    assert "someone on our team needs to check your payment" in message.body
    assert "http://testserver" + status_url(order) in message.body


def test_a_held_order_that_finishes_itself_says_it_is_being_set_up(stripe_emulator, mailoutbox,
                                                                    django_capture_on_commit_callbacks):
    order = paid_order(email="bo@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_hold_money(order_id=order.id, actor="customer", reason="Stripe unreachable")

    (message,) = emails_to(mailoutbox, "bo@example.com")
    assert "Your account is being set up" in message.body
    assert "Refund me now" in message.body


def test_refund_me_now_on_248_refunds_248_in_full_and_says_so_without_contradiction(
    client, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = held_for_248()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("billing:refund-now", kwargs={"token": order_status_token(order)}))

    order.refresh_from_db()
    assert order.state == "refunded"
    assert order.amount_refunded_cents == 24800
    (message,) = [m for m in emails_to(mailoutbox, order.email) if "refund" in m.subject.lower()]
    for body in (message.body, message.alternatives[0][0]):
        assert "refunded your payment of" in body
        assert "$248.00" in body
        assert "in full" in body
        assert "part of" not in body
        assert "$249.00" not in body
        assert "ended" not in body  # they never had access
    assert "Your payment of $248.00 has been refunded in full" in client.get(status_url(order)).content.decode()


def test_each_stripe_refund_is_kept_as_its_own_line(stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")
    services.order_refund(order_id=order.id, actor="support:sam", reason="Goodwill", amount_cents=1000)
    services.order_refund(order_id=order.id, actor="support:sam", reason="Goodwill", amount_cents=500)

    lines = list(OrderRefund.objects.filter(order=order).values_list("amount_cents", flat=True))
    assert lines == [1000, 500]
    order.refresh_from_db()
    assert order.amount_refunded_cents == 1500
    assert order.refunded_display == "$15.00"


def test_the_bank_statement_line_is_stripes_and_on_the_status_page(client, stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")
    charge = stripe.Charge.retrieve(order.stripe_charge_id)

    page = client.get(status_url(order)).content.decode()

    assert order.statement_descriptor == charge.calculated_statement_descriptor != ""
    assert "On your bank statement" in page
    assert order.statement_descriptor in page


def test_the_confirmation_email_carries_the_bank_statement_line(stripe_emulator, mailoutbox,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_settle(order_id=paid_order(email="cy@example.com").id, actor="customer")

    (message,) = [m for m in emails_to(mailoutbox, "cy@example.com")
                  if "confirmation" and "all set" in m.subject]
    assert f"On your bank statement: {order.statement_descriptor}" in message.body
    assert order.statement_descriptor in message.alternatives[0][0]


def test_the_confirmation_of_an_order_its_payment_event_settled_names_the_card_and_the_bank_statement_line(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    # payment_intent.succeeded carries the PaymentIntent with its charge as an id only: the card and
    # the statement line come from settle's read of Stripe, even when the event settles the order.
    order = paid_order(email="di@example.com")
    event = stripe_event_for(order, "payment_intent.succeeded")

    with django_capture_on_commit_callbacks(execute=True):
        services.stripe_event_receive(event=event)

    order.refresh_from_db()
    (message,) = [m for m in emails_to(mailoutbox, "di@example.com") if "all set" in m.subject]
    assert order.statement_descriptor
    assert f"On your bank statement: {order.statement_descriptor}" in message.body
    assert "Card: Visa ending in 4242" in message.body


def test_the_status_api_carries_the_statement_line_for_the_page_to_show(client, stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")

    body = client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)})).json()

    assert body["statement_descriptor"] == order.statement_descriptor


def test_an_unpaid_order_without_javascript_says_nothing_is_paid_and_does_not_refresh(client, stripe_emulator):
    from tests.billing.helpers import order_with_payment_intent

    order = order_with_payment_intent()

    page = client.get(status_url(order)).content.decode()

    assert 'http-equiv="refresh"' not in page
    assert "Nothing has been paid for this order yet" in page
    assert reverse("billing:pay", kwargs={"token": order_status_token(order)}) in page


def test_the_confirmation_email_links_the_receipt(stripe_emulator, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_settle(order_id=paid_order(email="di@example.com").id, actor="customer")

    (message,) = [m for m in emails_to(mailoutbox, "di@example.com") if "all set" in m.subject]
    receipt = "http://testserver" + reverse("billing:receipt", kwargs={"token": order_status_token(order)})
    assert receipt in message.body
    assert receipt in message.alternatives[0][0]
