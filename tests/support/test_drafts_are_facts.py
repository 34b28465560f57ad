"""Drafts are facts: every sentence of a prefilled reply is backed by the order's state or its
timeline; the replies offered depend on the state; the recommended one fits the diagnosis, and the
diagnosis sees a double payment."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from billing.errors import RefundFailed
from billing.models import Order, OrderState, Plan
from billing.selectors import access_until_without, customer_day
from outbox.models import OutboundEmail
from support import selectors
from support.selectors.common import _when
from support.timefmt import console_date
from tests.billing.helpers import order_with_payment_intent, paid_order, pay
from tests.factories import OrderFactory, StaffFactory

pytestmark = pytest.mark.django_db

ACTIVE = ("is active until", "plan is active", "Your account is active")
REFUNDED = ("We've refunded", "Your refund")
NOT_READY = ("isn't ready yet", "We're finishing it now")
SENT_AGAIN = ("again",)


def offered(order) -> dict[str, str]:
    order = Order.objects.select_related("plan", "user").get(pk=order.pk)
    replies = selectors.order_replies(order, agent_name="Ana", status_url="https://backstop.test/orders/x/")
    for reply in replies:
        assert "{" not in reply.subject + reply.body, reply.key
    return {reply.key: f"{reply.subject}\n{reply.body}" for reply in replies}


def assert_none_say(replies: dict[str, str], phrases):
    for key, text in replies.items():
        for phrase in phrases:
            assert phrase not in text, f"{key} says {phrase!r}"


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run what the worker runs after each commit (emails sent), as in production."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


def active(sent, **fields):
    return sent(billing_services.order_settle, order_id=paid_order(**fields).id, actor="webhook")


# --- What a person saw --------------------------------------------------------------------------

def test_an_active_order_is_never_offered_a_sent_again_reply_when_nothing_was_sent_again(stripe_emulator, sent):
    replies = offered(active(sent))

    assert "resent" not in replies
    assert_none_say(replies, SENT_AGAIN)
    email = OutboundEmail.objects.get(kind="confirmation")
    assert f"was sent to {email.recipient} on {_when(email.sent_at)}" in replies["confirmation_sent"]


def test_the_sent_again_reply_is_offered_once_a_resend_is_on_the_timeline_and_sent(stripe_emulator, sent):
    from support import services

    order = active(sent)
    staff = StaffFactory()
    sent(services.outbound_email_resend, order_id=order.id, kind="confirmation", user=staff, key=uuid.uuid4())

    replies = selectors.order_replies(order, agent_name="Ana", status_url="x")

    assert replies[0].key == "resent"
    assert replies[0].recommended
    assert "We sent your confirmation for order" in replies[0].body


def test_an_inbound_email_from_an_active_customer_is_drafted_with_when_the_confirmation_was_sent(
    stripe_emulator, sent, client
):
    from support.models import InboundMessage
    from tests.support.test_inbound_email import postmark_inbound

    order = active(sent, email="ada@example.com")

    sent(postmark_inbound, client, text="I never got my confirmation email.")

    draft = InboundMessage.objects.get().draft_body
    assert "again" not in draft
    assert f"Your confirmation for order {order.reference} was sent to ada@example.com on" in draft


def test_the_diagnosis_of_a_customer_who_paid_twice_sees_both_payments(stripe_emulator, sent):
    first = active(sent, email="twice@example.com")
    second = active(sent, email="twice@example.com")

    diagnosis = selectors.order_diagnosis(Order.objects.get(pk=second.pk))

    assert "Nothing is wrong" not in diagnosis.summary
    assert f"This customer has 2 paid orders for the Annual plan: {first.reference}" in diagnosis.summary
    ends = console_date(Order.objects.get(pk=second.pk).entitlement.ends_at)
    assert f"and {second.reference} ($249.00, " in diagnosis.summary
    assert f"the second added 12 months, to {ends}" in diagnosis.summary
    assert (diagnosis.action, diagnosis.reply) == ("refund", "two_payments")


def test_a_customer_writing_that_they_paid_twice_gets_a_draft_offering_to_refund_one_with_what_they_keep(
    stripe_emulator, sent, client
):
    from support.models import InboundMessage
    from tests.support.test_inbound_email import postmark_inbound

    first = active(sent, email="ada@example.com")
    second = active(sent, email="ada@example.com")

    sent(postmark_inbound, client, text="I think I paid twice, can you refund one?")

    message = InboundMessage.objects.get()
    keeps = access_until_without(Order.objects.get(pk=second.pk))
    assert "2 paid orders" in message.diagnosis
    assert "again" not in message.draft_body
    assert f"(order {first.reference}) and $249.00 on" in message.draft_body
    assert f"we'll refund $249.00 for order {second.reference}" in message.draft_body
    assert f"your plan would then run until {customer_day(keeps)}" in message.draft_body


# --- Every state's replies hold -------------------------------------------------------------------

def test_an_unpaid_order_is_offered_only_not_charged_replies(stripe_emulator):
    order = order_with_payment_intent()

    replies = offered(order)

    assert set(replies) == {"not_charged", "not_found"}
    assert_none_say(replies, ACTIVE + REFUNDED + NOT_READY + ("We have your payment",))
    assert selectors.order_diagnosis(order).reply == "not_charged"


def test_a_failed_payment_is_offered_only_not_charged_replies(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_chargeDeclined")
    order = billing_services.order_settle(order_id=order.id, actor="webhook")
    assert order.state == OrderState.FAILED

    replies = offered(order)

    assert "the payment didn't go through" in replies["not_charged"]
    assert_none_say(replies, ACTIVE + REFUNDED + NOT_READY)


def test_an_active_order_is_offered_no_refund_and_no_sorry_not_ready(stripe_emulator, sent):
    replies = offered(active(sent))

    assert set(replies) == {"confirmation_sent", "active"}
    assert_none_say(replies, REFUNDED + NOT_READY + ("refund",))


def test_an_active_order_with_a_partial_refund_says_how_much_and_never_in_full(stripe_emulator, sent):
    order = active(sent)
    order = billing_services.order_refund(order_id=order.id, actor="support:ana", reason="goodwill", amount_cents=4900)

    replies = offered(order)
    diagnosis = selectors.order_diagnosis(order)

    assert "We've refunded $49.00 to your card (Visa ending 4242)" in replies["refunded"]
    assert "That is part of your $249.00 payment." in replies["refunded"]
    assert "stays active until" in replies["refunded"]
    assert_none_say(replies, ("in full", "ended with the refund"))
    assert "in full" not in diagnosis.summary


def test_a_refunded_order_is_offered_only_the_refund_reply_with_stripes_amount_and_date(stripe_emulator, sent):
    order = active(sent)
    order = sent(billing_services.order_refund, order_id=order.id, actor="support:ana", reason="asked")
    assert order.state == OrderState.REFUNDED

    replies = offered(order)

    assert set(replies) == {"refunded"}
    refund = order.refunds.get()
    assert f"We've refunded $249.00 to your card (Visa ending 4242) for order {order.reference} on " \
           f"{_when(refund.created_at)}." in replies["refunded"]
    assert "Your Annual plan ended with the refund." in replies["refunded"]
    assert_none_say(replies, ACTIVE[:2] + NOT_READY + ("That is part of",))


def test_a_refund_stripe_has_not_confirmed_is_offered_only_the_in_progress_reply(
    stripe_emulator, sent, emulator_control
):
    order = active(sent)
    emulator_control.fail_next(method="POST", path="/v1/refunds", count=10, status=500)
    with pytest.raises(RefundFailed):
        billing_services.order_refund(order_id=order.id, actor="support:ana", reason="asked")
    order.refresh_from_db()
    assert order.state == OrderState.REFUND_PENDING

    replies = offered(order)

    assert set(replies) == {"refund_in_progress"}
    assert "to refund $249.00" in replies["refund_in_progress"]
    assert_none_say(replies, (*ACTIVE, "We've refunded", *NOT_READY))


def test_money_held_for_review_is_offered_the_held_reply_with_its_deadline(stripe_emulator):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)
    order = billing_services.order_settle(order_id=order.id, actor="webhook")
    assert order.state == OrderState.NEEDS_REVIEW
    assert order.held_since

    replies = offered(order)

    assert set(replies) == {"held"}
    assert "We have your payment of $249.00" in replies["held"]  # what Stripe took, not the order's $199.00
    assert f"Unless we finish it by {_when(order.refund_deadline_at)}" in replies["held"]
    assert_none_say(replies, ACTIVE + REFUNDED + ("$199.00",))


def test_a_charged_order_nothing_finished_is_offered_what_recover_is_about_to_do(stripe_emulator):
    order = paid_order()  # charged; the order does not know Stripe's amount yet

    replies = offered(order)

    assert set(replies) == {"checking"}
    assert_none_say(replies, ACTIVE + REFUNDED + ("We have your payment",))


def test_every_amount_in_a_reply_is_what_stripe_took_not_todays_plan_price(stripe_emulator, sent):
    order = active(sent)
    order = billing_services.order_refund(order_id=order.id, actor="support:ana", reason="goodwill", amount_cents=800)
    Plan.objects.update(amount_cents=29900)  # repriced since

    replies = offered(order)

    assert "Your payment of $249.00" in replies["active"]
    assert "We've refunded $8.00" in replies["refunded"]
    assert_none_say(replies, ("$299.00",))


def test_a_customer_who_waited_for_their_account_is_recommended_the_active_reply_with_an_apology(
    stripe_emulator, sent
):
    order = active(sent)
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(minutes=40, seconds=30))  # then waited

    diagnosis = selectors.order_diagnosis(Order.objects.get(pk=order.pk))
    replies = offered(order)

    assert diagnosis.reply == "active"
    assert "The customer waited 40 minutes" in diagnosis.summary
    assert "Sorry for the wait." in replies["active"]


def test_a_customer_activated_at_once_gets_no_apology_for_a_wait(stripe_emulator, sent):
    assert_none_say(offered(active(sent)), ("Sorry for the wait",))


def test_the_recommended_reply_comes_first_and_is_the_one_the_diagnosis_names(stripe_emulator, sent):
    for order in (active(sent), order_with_payment_intent(), OrderFactory(state=OrderState.CANCELED)):
        diagnosis = selectors.order_diagnosis(order)
        replies = selectors.order_replies(order, agent_name="", status_url="x", diagnosis=diagnosis)

        assert replies[0].key == diagnosis.reply
        assert [r.recommended for r in replies] == [True] + [False] * (len(replies) - 1)


def test_the_case_page_opens_the_recommended_reply(client, stripe_emulator, sent):
    order = active(sent)
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")

    page = client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert '<details open data-reply="confirmation_sent">' in page
    assert 'id="reply-resent"' not in page
    assert 'id="reply-refunded"' not in page
