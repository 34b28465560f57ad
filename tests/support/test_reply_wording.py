"""The prefilled replies' words, whole: a snapshot of drafts for fixed orders, so moving or
rewording the copy is a visible change here, and a draft to someone who never wrote does not thank
them for writing."""

from datetime import UTC, datetime

import pytest

from billing.models import Order, OrderState
from support import selectors
from support.selectors import Diagnosis
from tests.factories import OrderFactory, PlanFactory

pytestmark = pytest.mark.django_db

PAID_AT = datetime(2026, 11, 30, 14, 5, tzinfo=UTC)
STATUS_URL = "https://backstop.test/orders/x/"


def order(**fields) -> Order:
    plan = PlanFactory()
    made = OrderFactory(plan=plan, reference="BK-7Q2M-Q0D4", email="ada@example.com", full_name="Ada Lovelace",
                        **fields)
    return Order.objects.select_related("plan").get(pk=made.pk)


def drafts(order: Order, *, reply: str, action: str = "none", wrote: bool, question: str = "") -> dict[str, str]:
    diagnosis = Diagnosis("", action, "", reply)
    found = selectors.order_replies(order, agent_name="Ana", status_url=STATUS_URL, diagnosis=diagnosis,
                                    wrote=wrote, question=question)
    return {r.key: f"{r.subject}\n---\n{r.body}" for r in found}


def unpaid():
    return order(state=OrderState.PENDING)


def charged(**fields):
    return order(state=OrderState.PAID, amount_received_cents=24900, paid_at=PAID_AT, **fields)


def held():
    return order(state=OrderState.NEEDS_REVIEW, amount_received_cents=24900, paid_at=PAID_AT, held_since=PAID_AT,
                 refund_deadline_at=datetime(2026, 12, 7, 14, 5, tzinfo=UTC), attention_reason="amount differs")


# --- The drafts, word for word (taken from the copy before it moved into templates) -------------

UNPAID_NEVER_WROTE = {
    "not_charged": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We checked order BK-7Q2M-Q0D4: the payment was never completed, and no money was taken, so you owe us "
        "nothing. If you'd still like the Annual plan, you can pay from your order page:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
    "not_found": (
        "Let's find your payment\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We couldn't find a payment from ada@example.com yet. So we can look it up, could you reply with the "
        "last 4 digits of the card you used, the amount, and the date of the charge as it shows on your "
        "statement? With those we can find it quickly.\n"
        "\n"
        "Ana"
    ),
}

UNPAID_ASKED_IF_CHARGED = {
    "was_charged": (
        "Your payment for order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "No: no money was taken for order BK-7Q2M-Q0D4. The payment was never completed. If you'd still like "
        "the Annual plan, you can pay from your order page:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "You can follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Your reference is BK-7Q2M-Q0D4.\n"
        "\n"
        "Ana"
    ),
    "not_charged": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "Thank you for writing. We checked order BK-7Q2M-Q0D4: the payment was never completed, and no money "
        "was taken, so you owe us nothing. If you'd still like the Annual plan, you can pay from your order page:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
    "not_found": (
        "Let's find your payment\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "Thank you for writing. We couldn't find a payment from ada@example.com yet. So we can look it up, "
        "could you reply with the last 4 digits of the card you used, the amount, and the date of the charge "
        "as it shows on your statement? With those we can find it quickly.\n"
        "\n"
        "Ana"
    ),
}

CHARGED_NEVER_WROTE = {
    "checking": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We're checking your order BK-7Q2M-Q0D4 with our payment provider now, and we'll write again as soon "
        "as we know. You won't be charged twice. You can also follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
    "offer_refund": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We have your payment of $249.00 from Nov 30, 2026 14:05 UTC, and we're sorry your account isn't ready "
        "yet. We're finishing it now. If you'd rather not wait, reply to this email and we'll refund you in "
        "full straight away; either way, you won't be charged twice.\n"
        "\n"
        "You can follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
}

CHARGED_ASKED_IF_CHARGED = {
    "was_charged": (
        "Your payment for order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "Yes: Stripe took $249.00 from your card (Visa ending 4242) on Nov 30, 2026 14:05 UTC. We're finishing "
        "your order now; you won't be charged twice.\n"
        "\n"
        "You can follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Your reference is BK-7Q2M-Q0D4.\n"
        "\n"
        "Ana"
    ),
    "checking": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "Thank you for writing. We're checking your order BK-7Q2M-Q0D4 with our payment provider now, and "
        "we'll write again as soon as we know. You won't be charged twice. You can also follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
    "offer_refund": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We have your payment of $249.00 from Nov 30, 2026 14:05 UTC, and we're sorry your account isn't ready "
        "yet. We're finishing it now. If you'd rather not wait, reply to this email and we'll refund you in "
        "full straight away; either way, you won't be charged twice.\n"
        "\n"
        "You can follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
}

HELD = {
    "held": (
        "About your order BK-7Q2M-Q0D4\n"
        "---\n"
        "Hello Ada,\n"
        "\n"
        "We have your payment of $249.00 from Nov 30, 2026 14:05 UTC, and we're sorry your account isn't ready "
        "yet: someone on our team needs to check your order before it can be switched on. Unless we finish it "
        "by Dec 7, 2026 14:05 UTC, we refund you in full automatically. If you'd rather not wait, reply to "
        "this email and we'll refund you in full straight away; either way, you won't be charged twice.\n"
        "\n"
        "You can follow your order here:\n"
        "https://backstop.test/orders/x/\n"
        "\n"
        "Ana"
    ),
}


def test_an_unpaid_order_s_drafts_to_someone_who_never_wrote_read_word_for_word():
    assert drafts(unpaid(), reply="not_charged", wrote=False) == UNPAID_NEVER_WROTE


def test_an_unpaid_order_s_drafts_to_someone_asking_if_they_were_charged_read_word_for_word():
    found = drafts(unpaid(), reply="not_charged", wrote=True, question="charged")

    assert list(found.items()) == list(UNPAID_ASKED_IF_CHARGED.items())


def test_a_charged_unfinished_order_s_drafts_to_someone_who_never_wrote_read_word_for_word():
    found = drafts(charged(card_last4="4242", card_brand="visa"), reply="checking", action="recover", wrote=False)

    assert list(found.items()) == list(CHARGED_NEVER_WROTE.items())


def test_a_charged_unfinished_order_s_drafts_to_someone_asking_if_they_were_charged_read_word_for_word():
    found = drafts(charged(card_last4="4242", card_brand="visa"), reply="checking", action="recover", wrote=True,
                   question="charged")

    assert list(found.items()) == list(CHARGED_ASKED_IF_CHARGED.items())


def test_a_held_order_s_draft_reads_word_for_word():
    assert drafts(held(), reply="held", wrote=True) == HELD


def test_a_draft_thanks_for_writing_only_someone_who_wrote():
    wrote = drafts(unpaid(), reply="not_charged", wrote=True)
    never = drafts(Order.objects.get(), reply="not_charged", wrote=False)

    assert all("Thank you for writing." in text for text in wrote.values())
    assert not any("Thank you for writing" in text for text in never.values())


@pytest.mark.parametrize("key", selectors.REPLY_KEYS)
def test_every_reply_has_a_subject_and_a_body_template(key):
    subject, body = selectors.reply_render(key, {"name": " Ada", "agent": "Ana"}, wrote=True)

    assert subject.strip()
    assert body.startswith("Hello")
    assert body.endswith("Ana")
