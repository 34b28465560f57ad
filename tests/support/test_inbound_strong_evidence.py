"""Inbound support email links an order only on strong evidence (its reference or statement code,
a Stripe id, or the sender's own address); a card's last 4 and an amount, which thousands of
strangers share, never link someone else's order. The case page says which orders are the sender's."""

import html
import re

import pytest
from django.urls import reverse
from djstripe.models import Charge

from billing.mirror import stripe_mirror_sync
from billing.models import OrderState
from support import selectors
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory
from tests.support.test_inbound_email import mail  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def test_a_card_last_four_and_an_amount_from_a_stranger_link_none_of_the_orders_paid_that_way(mail, stripe_emulator):  # noqa: F811
    others = [paid_order(email=f"customer{n}@example.com") for n in range(3)]  # each $249.00 on a card ending 4242
    stripe_mirror_sync()

    message = mail(sender="someone.else@example.org", text="I was charged: card ending 4242, $249.00.")

    assert not message.orders.filter(pk__in=[o.pk for o in others]).exists()
    assert "No order or payment matches" in message.diagnosis


def test_a_card_last_four_and_an_amount_from_the_sender_link_only_the_senders_own_orders(mail, stripe_emulator):  # noqa: F811
    own = paid_order(email="ada@example.com")
    paid_order(email="grace@example.com")
    stripe_mirror_sync()

    message = mail(sender="ada@example.com", text="card ending 4242, $249.00")

    assert list(message.orders.all()) == [own]


def test_a_payment_intent_id_quoted_in_the_email_links_its_order(mail, stripe_emulator):  # noqa: F811
    order = paid_order(email="grace@example.com")

    message = mail(sender="stranger@example.org", text=f"Stripe says {order.stripe_payment_intent_id} succeeded")

    assert list(message.orders.all()) == [order]
    assert message.diagnosis.startswith("Unverified sender")


def test_a_charge_id_quoted_in_the_email_links_its_order(mail, stripe_emulator):  # noqa: F811
    order = paid_order(email="grace@example.com")
    stripe_mirror_sync()
    # The order does not know its charge yet: the mirror does.
    charge_id = Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id).id

    message = mail(sender="stranger@example.org", text=f"My bank shows charge {charge_id}")

    assert list(message.orders.all()) == [order]


def test_the_senders_own_orders_are_linked_before_any_ten_orders_the_email_quotes():
    own = OrderFactory(email="ada@example.com")
    quoted = [OrderFactory(email=f"c{n}@example.com") for n in range(12)]
    text = " ".join(o.reference for o in quoted)

    found = selectors.orders_mentioned(from_email="ada@example.com", subject="", text=text)

    assert found[0] == own
    assert len(found) == 10


def test_the_case_page_marks_the_senders_order_and_says_why_another_is_linked(mail, console):  # noqa: F811
    own = OrderFactory(email="ada@example.com", state=OrderState.NEEDS_REVIEW)
    other = OrderFactory(email="grace@example.com", state=OrderState.NEEDS_REVIEW)
    message = mail(sender="ada@example.com", text=f"Is this mine? {other.reference}")

    page = console.get(reverse("admin:support_inboundmessage_change", args=[message.pk])).content.decode()

    rows = {ref: re.sub(r"\s+", " ", html.unescape(row)) for ref, row in re.findall(
        r'<li class="inbound-order" data-reference="([^"]+)">(.*?)</li>', page, re.S)}
    assert "The sender's order (their address)" in rows[own.reference]
    assert "Not the sender's: the email quotes its reference" in rows[other.reference]


def test_the_diagnosis_says_when_orders_that_are_not_the_senders_are_linked_too(mail):  # noqa: F811
    OrderFactory(email="ada@example.com", state=OrderState.NEEDS_REVIEW)
    other = OrderFactory(email="grace@example.com", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="ada@example.com", text=f"Is this mine? {other.reference}")

    assert "Also linked: 1 order(s) the email quotes that are not the sender's" in message.diagnosis
    assert other.reference not in message.draft_body


def test_an_order_linked_by_an_earlier_looser_match_is_marked_as_unproved(mail, console):  # noqa: F811
    other = OrderFactory(email="grace@example.com", card_last4="4242")
    message = mail(sender="ada@example.com", text="card ending 4242, $249.00")
    message.orders.add(other)  # as the matching did before it needed strong evidence

    (link,) = [link for link in selectors.inbound_order_links(message) if link["order"] == other]

    assert link["why"] == "Not the sender's, and nothing in the email proves it is theirs; it is grace@example.com's"
