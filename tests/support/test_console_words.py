"""Words: the sign-in link email support sends says who sent it and why; Recover on a held case
says why it cannot finish and what to do."""

import html
import uuid
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse

from billing import services as billing_services
from billing.models import Order, OrderState
from outbox.services import outbound_email_queue
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42",
                 name="Ana Souza", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")
    return client


def active_order(email="ada@example.com"):
    return billing_services.order_settle(order_id=paid_order(email=email).id, actor="webhook")


def send_signin_link(console, order, django_capture_on_commit_callbacks, **form):
    with django_capture_on_commit_callbacks(execute=True):
        return console.post(reverse("admin:billing_order_signin_link", args=[order.pk]),
                            {"key": str(uuid.uuid4()), **form})


def signin_emails(mailoutbox):
    return [m for m in mailoutbox if m.subject == "Your sign-in link for Backstop"]


def test_a_sign_in_link_support_sends_unprompted_says_who_sent_it_and_why(
    console, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = active_order()

    send_signin_link(console, order, django_capture_on_commit_callbacks,
                     reason="We finished setting up your account after a delay")

    (message,) = signin_emails(mailoutbox)
    for body in (message.body, html.unescape(message.alternatives[0][0])):
        assert "as you asked" not in body
        assert ("Ana from our support team sent you this one-click link to your Backstop account. "
                "We finished setting up your account after a delay.") in body
    assert order.events.filter(actor="support:ana@backstop.localhost",
                               reason__contains="We finished setting up your account").exists()


def test_a_sign_in_link_for_a_customer_who_asked_by_email_says_as_you_asked(
    console, client, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    from tests.support.test_inbound_email import postmark_inbound

    order = active_order()
    with django_capture_on_commit_callbacks(execute=True):
        postmark_inbound(client, sender="ada@example.com", text="I can't get into my account")
    mailoutbox.clear()

    send_signin_link(console, order, django_capture_on_commit_callbacks)

    (message,) = signin_emails(mailoutbox)
    for body in (message.body, html.unescape(message.alternatives[0][0])):
        assert "Ana from our support team sent you this one-click link" in body
        assert "We're sending it as you asked in your email of" in body


def test_a_sign_in_link_with_no_reason_and_no_request_from_the_customer_is_not_sent(
    console, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = active_order()

    response = send_signin_link(console, order, django_capture_on_commit_callbacks)

    assert signin_emails(mailoutbox) == []
    assert any("Say why" in str(m) for m in get_messages(response.wsgi_request))


def test_recover_on_a_held_case_says_why_it_cannot_finish_and_what_to_do(console, stripe_emulator):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)  # Stripe took $249.00; the order asks $199.00
    billing_services.order_settle(order_id=order.id, actor="webhook")

    response = console.post(reverse("admin:billing_order_recover", args=[order.pk]), {"key": str(uuid.uuid4())})

    order.refresh_from_db()
    assert order.state == OrderState.NEEDS_REVIEW
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"{order.reference} still needs review. Recover cannot finish it: "
                              "Stripe received $249.00, the order expects $199.00.")
    assert "is held and is refunded automatically at" in message
    assert "Recover cannot fix an amount Stripe took differently: Accept what Stripe took, or Refund." in message


def test_a_sign_in_link_for_a_refunded_order_says_nothing_about_an_active_plan(stripe_emulator):
    from billing.emails import build_message

    order = billing_services.order_settle(order_id=paid_order().id, actor="customer")
    order = billing_services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost",
                                          reason="Asked for a refund")
    email = outbound_email_queue(about=order, kind="signin_link",
                                                  recipient=order.email)

    message = build_message(email)

    for body in (message.body, message.alternatives[0][0]):
        assert "is active until" not in body
        assert "is on your account" not in body


def test_a_sign_in_link_gives_the_end_of_all_the_time_the_customer_paid_for(stripe_emulator):
    from billing.emails import build_message
    from billing.selectors import order_access

    first = billing_services.order_settle(order_id=paid_order(email="bo@example.com").id, actor="customer")
    second = billing_services.order_settle(order_id=paid_order(email="bo@example.com").id, actor="customer")
    email = outbound_email_queue(about=first, kind="signin_link",
                                                  recipient=first.email)

    message = build_message(email)

    until = order_access(second).until
    assert f"is active until {until:%B} {until.day}, {until.year}" in message.body
