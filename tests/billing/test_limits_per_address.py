"""Limits a stranger cannot turn against a customer: checkouts are counted per client and per
client and address together (never per address alone), a customer who proved the address is never
held back, and what one address receives is capped; when a cap holds back a lookup or a password
link, the page says that nothing was sent and when to try again, without saying whether the
address has an account or orders."""

import html
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from sesame.utils import get_query_string

from billing.models import Order, OrderState
from billing.tokens import order_status_token
from outbox.models import OutboundEmail
from tests.factories import OrderFactory, PlanFactory, UserFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db

ERIN = "erin@example.com"


def checkout(client, email=ERIN):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "Erin", "nonce": str(uuid.uuid4()),
                                                     "email_confirmed": "1"})


def lookup(client, email=ERIN):
    return client.post(reverse("billing:lookup"), {"email": email})


def ask_for_a_password_link(client, email=ERIN):
    return client.post(reverse("accounts:password_reset"), {"email": email})


def test_ten_checkouts_for_erin_from_one_client_do_not_block_erin_from_another(stripe_emulator):
    PlanFactory()
    counting_afresh(rate="10/h", value=f"203.0.113.5|{ERIN}")
    for _ in range(11):
        checkout(Client(REMOTE_ADDR="203.0.113.5"))

    response = checkout(Client(REMOTE_ADDR="198.51.100.20"))

    assert response.status_code == 302


def test_the_client_that_made_them_is_paused_and_told_when_to_try_again(stripe_emulator):
    PlanFactory()
    counting_afresh(rate="10/h", value=f"203.0.113.5|{ERIN}")

    answers = [checkout(Client(REMOTE_ADDR="203.0.113.5")) for _ in range(11)]

    assert answers[-1].status_code == 429
    assert "Please try again in about" in answers[-1].content.decode()


def test_a_signed_in_customer_is_never_held_back_by_the_checkout_limits(stripe_emulator, django_user_model):
    PlanFactory()
    erin = django_user_model.objects.create_user(email=ERIN)  # no password: the emailed link signs her in
    counting_afresh(rate="20/h", value="127.0.0.1")
    for i in range(21):
        checkout(Client(), f"someone{i}@example.com")
    client = Client()
    client.get(reverse("accounts:signin") + get_query_string(erin))

    response = checkout(client)

    assert response.status_code == 302
    assert Order.objects.filter(email=ERIN).exists()


def test_a_lookup_held_back_by_the_address_cap_says_nothing_was_sent_and_when_to_try_again():
    OrderFactory(email=ERIN, state=OrderState.ACTIVE, paid_at=timezone.now(),
                 stripe_payment_intent_id=f"pi_{uuid.uuid4().hex[:24]}")
    counting_afresh(rate="5/d", value=ERIN)
    for i in range(5):
        lookup(Client(REMOTE_ADDR=f"10.0.2.{i}"))

    response = lookup(Client(REMOTE_ADDR="10.0.2.99"))

    text = response.content.decode()
    assert response.status_code == 429
    assert "We haven't sent an email this time" in text
    assert "Please try again in about" in text


def test_the_capped_lookup_page_is_the_same_for_an_address_with_no_orders():
    counting_afresh(rate="5/d", value="nobody@example.com")
    for i in range(5):
        lookup(Client(REMOTE_ADDR=f"10.0.3.{i}"), "nobody@example.com")

    response = lookup(Client(REMOTE_ADDR="10.0.3.99"), "nobody@example.com")

    assert response.status_code == 429
    assert "We haven't sent an email this time" in response.content.decode()


def test_a_password_link_held_back_by_the_address_cap_says_so_and_sends_nothing():
    UserFactory(email=ERIN)
    counting_afresh(rate="5/d", value=ERIN)
    for i in range(5):
        ask_for_a_password_link(Client(REMOTE_ADDR=f"10.0.4.{i}"))

    response = ask_for_a_password_link(Client(REMOTE_ADDR="10.0.4.99"))

    assert response.status_code == 429
    assert "We haven't sent an email this time" in response.content.decode()
    assert OutboundEmail.objects.filter(kind="password_reset").count() == 5


def test_the_capped_password_page_is_the_same_for_an_address_without_an_account():
    counting_afresh(rate="5/d", value="nobody@example.com")
    for i in range(5):
        ask_for_a_password_link(Client(REMOTE_ADDR=f"10.0.5.{i}"), "nobody@example.com")

    response = ask_for_a_password_link(Client(REMOTE_ADDR="10.0.5.99"), "nobody@example.com")

    assert response.status_code == 429
    assert "We haven't sent an email this time" in response.content.decode()


def test_a_customer_signed_in_by_link_finds_her_order_even_after_strangers_used_up_the_address_cap(
    django_user_model,
):
    erin = django_user_model.objects.create_user(email=ERIN)
    OrderFactory(email=ERIN, user=erin, state=OrderState.ACTIVE, paid_at=timezone.now(),
                 stripe_payment_intent_id=f"pi_{uuid.uuid4().hex[:24]}")
    counting_afresh(rate="5/d", value=ERIN)
    for i in range(6):
        lookup(Client(REMOTE_ADDR=f"10.0.6.{i}"))
    client = Client()
    client.get(reverse("accounts:signin") + get_query_string(erin))

    response = lookup(client)

    assert response.status_code == 200
    assert "Check your email" in response.content.decode()


# --- Find my order: one email per lookup ------------------------------------------------------------


def erins_paid_order(state=OrderState.ACTIVE):
    return OrderFactory(email=ERIN, state=state, paid_at=timezone.now(),
                        stripe_payment_intent_id=f"pi_{uuid.uuid4().hex[:24]}")


def test_a_customer_with_two_orders_gets_her_email_on_the_last_lookup_the_address_cap_lets_through():
    erins_paid_order()
    erins_paid_order()
    counting_afresh(rate="5/d", value=ERIN)
    for i in range(4):
        lookup(Client(REMOTE_ADDR=f"10.0.7.{i}"))
    emails_before = OutboundEmail.objects.filter(recipient=ERIN).count()

    response = lookup(Client(REMOTE_ADDR="198.51.100.20"))

    assert "Check your email" in response.content.decode()
    assert OutboundEmail.objects.filter(recipient=ERIN).count() == emails_before + 1


def test_one_lookup_sends_one_email_that_lists_both_orders_each_with_its_own_link(
    mailoutbox, django_capture_on_commit_callbacks
):
    older = erins_paid_order()
    newer = erins_paid_order(state=OrderState.REFUNDED)

    with django_capture_on_commit_callbacks(execute=True):
        lookup(Client())

    (message,) = mailoutbox
    assert message.subject == f"Your orders {newer.reference}, {older.reference}"
    for body in (message.body, html.unescape(message.alternatives[0][0])):
        for order in (older, newer):
            assert order.reference in body
            assert order_status_token(order) in body
        assert "You're all set" in body
        assert "Refunded" in body


def test_a_lookup_for_an_address_with_one_order_sends_the_single_order_email(
    mailoutbox, django_capture_on_commit_callbacks
):
    order = erins_paid_order()

    with django_capture_on_commit_callbacks(execute=True):
        lookup(Client())

    (message,) = mailoutbox
    assert message.subject == f"Your order {order.reference}"
    assert "View your order" in message.alternatives[0][0]
