"""A customer who asks "Was I charged?" gets a draft that answers that first: what Stripe took and
when, or that nothing was taken; what happens next comes after."""

import pytest
from django.utils import timezone

from billing import services
from billing.models import OrderState
from support import selectors
from support.timefmt import console_time
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import OrderFactory
from tests.support.test_inbound_email import mail  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def first_words(draft: str) -> str:
    """What the draft says after the greeting."""
    return draft.split("\n\n", 1)[1]


@pytest.fixture
def active(stripe_emulator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.order_settle(order_id=paid_order(email="ada@example.com", full_name="Ada Lovelace").id,
                                     actor="customer")


def test_asked_if_charged_about_an_active_order_the_draft_starts_with_what_stripe_took_and_when(mail, active):  # noqa: F811
    message = mail(sender="ada@example.com", subject="Was I charged?", text="I can't tell if it went through.")

    assert first_words(message.draft_body).startswith(
        f"Yes: Stripe took $249.00 from your card (Visa ending 4242) on {console_time(active.paid_at)}.")


def test_asked_if_charged_about_an_order_never_paid_the_draft_starts_with_nothing_taken(mail, stripe_emulator):  # noqa: F811
    order = order_with_payment_intent(email="ada@example.com", full_name="Ada Lovelace")

    message = mail(sender="ada@example.com", subject="Did you charge me?", text="The page said error.")

    assert first_words(message.draft_body).startswith(f"No: no money was taken for order {order.reference}.")


def test_asked_if_charged_about_a_refunded_order_the_draft_says_what_was_taken_then_the_refund(
    mail, active, django_capture_on_commit_callbacks  # noqa: F811
):
    with django_capture_on_commit_callbacks(execute=True):
        services.order_refund(order_id=active.id, actor="customer", reason="Changed my mind")

    message = mail(sender="ada@example.com", subject="was i charged", text="")

    words = first_words(message.draft_body)
    assert words.startswith(f"Yes: Stripe took $249.00 from your card (Visa ending 4242) on "
                            f"{console_time(active.paid_at)}; we refunded $249.00 of it")


def test_an_email_that_does_not_ask_gets_the_draft_the_diagnosis_names(mail, active):  # noqa: F811
    message = mail(sender="ada@example.com", subject="Where is my confirmation?", text="Nothing arrived.")

    assert not first_words(message.draft_body).startswith("Yes:")


def test_the_question_is_read_in_the_ways_people_write_it():
    for text in ("Was I charged?", "have I been charged twice", "Did you charge my card?", "was my card charged",
                 "Am I being billed?"):
        assert selectors.inbound_tokens(subject="", text=text).asks_if_charged, text
    assert not selectors.inbound_tokens(subject="", text="I was charged $249.00").asks_if_charged


def test_a_held_order_asked_about_leads_with_the_money_then_says_it_is_being_checked(mail):  # noqa: F811
    OrderFactory(email="ada@example.com", state=OrderState.NEEDS_REVIEW, amount_received_cents=24900,
                 received_currency="usd", paid_at=timezone.now(), card_brand="visa", card_last4="4242")

    message = mail(sender="ada@example.com", subject="Was I charged?", text="")

    words = first_words(message.draft_body)
    assert words.startswith("Yes: Stripe took $249.00 from your card (Visa ending 4242)")
    assert "needs to check your order" in words
