"""Issue 20, item 3 (support's half): the diagnosis covers every pair of order state and Stripe
status, each with its own words, and names only an action that works for it.

The product of billing.models.OrderState and what Stripe may say of the order's PaymentIntent. The
order is built as settle would have left it before Stripe's latest word; Stripe's side is played by
the emulator, except `processing` and `requires_capture`, which it cannot play (Backstop captures
automatically and takes cards only) and which are built as Stripe's wire objects. For each pair the
test checks the recommended action against the table below, and that the action works: Recover
changes the order, Accept activates it, a refund has money to take back, "not charged" is true in
Stripe, an unfinished attempt can be canceled; the dashboard and "none" are for what nothing of
ours can change. "Nothing is wrong" is said once: active, succeeded, as asked.
"""

from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from billing import services, stripe_api
from billing.errors import BillingError
from billing.models import Order, OrderState
from support.selectors import CANCEL_ATTEMPT, UNKNOWN, order_diagnosis
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = OrderState

STATUSES = ["none", "requires_payment_method", "declined", "requires_confirmation", "requires_action",
            "processing", "requires_capture", "canceled", "succeeded", "refunded", "partly_refunded", "disputed",
            "amount_differs"]
SUCCEEDED = {"succeeded", "refunded", "partly_refunded", "disputed", "amount_differs"}

R, C, D, N, X = "recover", "cancel_attempt", "stripe_dashboard", "reply_not_charged", "none"
# The action the diagnosis recommends, per order state, in the order of STATUSES.
EXPECTED = {
    S.PENDING: [N, C, C, C, C, R, D, R, R, R, R, R, R],
    S.PROCESSING: [N, C, C, C, C, R, D, R, R, R, R, R, R],
    S.FAILED: [N, C, C, C, C, R, D, R, R, R, R, R, R],
    S.PAID: [D, R, R, R, R, R, R, R, R, R, R, R, R],
    S.ACTIVE: [D, R, R, R, R, R, R, R, "resend", R, R, R, "refund"],
    S.CANCELED: [X, C, C, C, C, D, D, X, R, R, R, R, R],
    S.REFUND_PENDING: [D, D, D, D, D, D, D, D, R, R, R, D, R],
    S.REFUNDED: [D, D, D, D, D, D, D, D, D, X, D, D, D],
    S.DISPUTED: [D, D, D, D, D, D, D, D, D, R, D, D, D],
    S.NEEDS_REVIEW: [D, N, N, N, N, D, D, N, "refund", R, "refund", D, "accept"],
}
PAIRS = [(state, status) for state in S.values for status in STATUSES]


def test_the_table_covers_every_pair_of_order_state_and_stripe_status():
    assert set(EXPECTED) == set(S.values)
    assert all(len(row) == len(STATUSES) for row in EXPECTED.values())


def _wire(order, status):
    """A PaymentIntent as Stripe sends it, for the statuses the emulator cannot play."""
    return stripe.StripeObject.construct_from({
        "id": f"pi_wire{order.id:020d}", "object": "payment_intent", "status": status, "amount": order.amount_cents,
        "amount_received": 0, "currency": "usd", "latest_charge": None, "last_payment_error": None,
        "metadata": {"order_id": str(order.id), "reference": order.reference}, "created": 1_800_000_000,
    }, "sk_test")


def stripe_side(order, status):
    """Make Stripe say `status` of a PaymentIntent for this order; return it as Backstop reads it."""
    if status == "none":
        return None
    if status in ("processing", "requires_capture"):
        return _wire(order, status)
    amount = order.amount_cents - 100 if status == "amount_differs" else order.amount_cents
    params = {"amount": amount, "currency": "usd", "payment_method_types": ["card"],
              "metadata": {"order_id": str(order.id), "reference": order.reference}}
    if status in SUCCEEDED:
        method = "pm_card_createDispute" if status == "disputed" else "pm_card_visa"
        pi = stripe.PaymentIntent.create(**params, confirm=True, payment_method=method)
        if status in ("refunded", "partly_refunded"):
            stripe.Refund.create(payment_intent=pi.id, **({"amount": 100} if status == "partly_refunded" else {}))
    elif status == "requires_confirmation":
        pi = stripe.PaymentIntent.create(**params, payment_method="pm_card_visa")
    else:
        pi = stripe.PaymentIntent.create(**params)
        if status == "declined":
            with pytest.raises(stripe.CardError):
                stripe.PaymentIntent.confirm(pi.id, payment_method="pm_card_chargeDeclined")
        elif status == "requires_action":
            stripe.PaymentIntent.confirm(pi.id, payment_method="pm_card_authenticationRequired",
                                         return_url="http://testserver/return")
        elif status == "canceled":
            stripe.PaymentIntent.cancel(pi.id)
    return stripe_api.payment_intent_retrieve(pi.id)


def order_as_recorded(state, status):
    """The order as settle left it before Stripe's latest word (a lost webhook, a refund or a
    dispute made in Stripe's dashboard)."""
    order = OrderFactory()
    pi = stripe_side(order, status)
    took = pi is not None and pi.status == "succeeded"
    received = (pi.amount_received if took else order.amount_cents) if state in (
        S.PAID, S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.DISPUTED) else (
        pi.amount_received if took and state == S.NEEDS_REVIEW else None)
    now = timezone.now()
    fields = {"state": state, "stripe_payment_intent_id": pi.id if pi is not None else None,
              "amount_received_cents": received, "received_currency": "usd" if received is not None else "",
              "paid_at": now - timedelta(minutes=20) if received is not None else None,
              "amount_refunded_cents": received if state == S.REFUNDED else 0}
    if state == S.FAILED:
        fields["attention_reason"] = "Your card was declined."
    if state == S.NEEDS_REVIEW:
        fields["attention_reason"] = ("Stripe received $248.00, the order expects $249.00" if status == "amount_differs"
                                      else "A payment arrived for an order that had been canceled")
        if received is not None:
            fields.update(held_since=now, refund_deadline_at=now + timedelta(days=3))
    Order.objects.filter(pk=order.pk).update(**fields)
    order.refresh_from_db()
    return order, pi


@pytest.mark.parametrize(("state", "status"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_has_its_own_diagnosis_and_an_action_that_works(state, status, stripe_emulator):
    order, pi = order_as_recorded(state, status)

    diagnosis = order_diagnosis(order, payment_intent=pi)

    expected = EXPECTED[state][STATUSES.index(status)]
    assert diagnosis.action == expected, diagnosis.summary
    assert ("Nothing is wrong" in diagnosis.summary) == (state == S.ACTIVE and status == "succeeded")
    assert diagnosis.reply in ("not_charged", "checking", "offer_refund", "held", "refund_in_progress", "refunded",
                               "disputed", "active", "confirmation_sent", "resent")
    charged = pi is not None and pi.status == "succeeded"
    if expected == "cancel_attempt":
        assert diagnosis.action_label == CANCEL_ATTEMPT
        assert CANCEL_ATTEMPT in diagnosis.summary
        assert pi.status in ("requires_payment_method", "requires_confirmation", "requires_action")
    if expected == "reply_not_charged":
        assert not charged
        assert any(words in diagnosis.summary for words in ("No payment taken", "no money was taken",
                                                             "nothing was charged", "Nothing is owed"))
    if expected == "refund":
        assert charged
        assert order.state in services.REFUNDABLE
        assert pi.amount_received > pi.latest_charge.amount_refunded
    if expected == "accept":
        assert "Recover" in diagnosis.summary  # says Recover cannot do it
        accepted = services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost",
                                                reason="a price we agreed")
        assert accepted.state == S.ACTIVE
    if expected == "recover" and diagnosis.action_label != "Check with Stripe":
        before = (order.state, order.amount_refunded_cents)
        after = services.order_settle(order_id=order.id, actor="support:ana@backstop.localhost", payment_intent=pi)
        assert (after.state, after.amount_refunded_cents) != before, diagnosis.summary
    if expected in ("stripe_dashboard", "none") and pi is not None:
        # Nothing of ours ends it: Recover at most relabels it or puts it in front of a person.
        try:
            after = services.order_settle(order_id=order.id, actor="support:ana@backstop.localhost",
                                          payment_intent=pi).state
        except BillingError:
            after = order.state
        assert after in (order.state, S.PROCESSING, S.NEEDS_REVIEW), diagnosis.summary
    if not charged:
        assert not diagnosis.summary.startswith(("Charged", "Paid"))


@pytest.mark.parametrize("state", S.values)
def test_with_stripe_unreachable_no_state_is_called_fine_and_an_open_one_is_checked_again(state, stripe_emulator):
    order, _pi = order_as_recorded(state, "succeeded")

    diagnosis = order_diagnosis(order, payment_intent=UNKNOWN)

    assert "Nothing is wrong" not in diagnosis.summary
    if state in (S.PENDING, S.PROCESSING, S.FAILED):
        assert (diagnosis.action, diagnosis.action_label) == ("recover", "Check with Stripe")
        assert "never tell the customer they were not charged" in diagnosis.summary
    else:
        assert "could not be reached" in diagnosis.summary or diagnosis.summary.startswith("Charged")
