"""What happened to an order and what a person should do about it (order_diagnosis): one branch
per order state, each worded from Stripe's facts. The facts of a paid order it leans on (a second
payment, the confirmation email, the wait) are in support/selectors/paid.py."""

from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from billing.models import Order
from billing.money import format_money
from billing.selectors import order_access
from support.selectors.common import NOT_ASKED, OPEN_STATES, UNKNOWN, S, _when
from support.selectors.money import Money, StripePayment, _Recorded, order_money, order_payment_intent, stripe_payment
from support.selectors.paid import (
    _activation_wait,
    _confirmation_facts,
    _two_payments,
    order_acceptable,
    order_other_payments,
    refund_effect,
)
from support.selectors.queue import sweep_notice
from support.timefmt import console_date


@dataclass(frozen=True)
class Diagnosis:
    summary: str  # what happened, in plain words
    action: str  # recover | refund | reply_not_charged | resend | none | stripe_dashboard
    action_label: str
    reply: str = ""  # the key of the prefilled reply that fits (see order_replies)


# What the case page names for an unfinished attempt (issue 20): support's "Cancel payment attempt"
# button (billing.services.order_payment_cancel) ends it in Stripe, so the customer may start again.
CANCEL_ATTEMPT = "Cancel payment attempt"
UNFINISHED = ("requires_payment_method", "requires_confirmation", "requires_action")


def order_diagnosis(order: Order, *, now: datetime | None = None, money: Money | None = None,
                    payment_intent=NOT_ASKED) -> Diagnosis:
    """What happened to this order and what a person should do about it, each from a fact: the
    order's state, Stripe's PaymentIntent (read here unless the caller passes what it read), its
    timeline, the customer's other payments, the sweep's health. Every pair of order state and
    Stripe status has its own words and names only an action that works for it
    (tests/support/test_diagnosis_every_pair.py). `reply` names the prefilled reply that fits."""

    now = now or timezone.now()
    pi = order_payment_intent(order) if payment_intent == NOT_ASKED else payment_intent
    stripe = stripe_payment(pi)
    # The same facts the header, search results and queue label the money with (order_money).
    money = money or order_money(order, payment_intent=NOT_ASKED if pi is None or isinstance(pi, _Recorded) else pi)
    amount, charged_at = money.amount, money.charged_at
    if stripe.status == UNKNOWN and order.state in OPEN_STATES and not isinstance(charged_at, datetime):
        return Diagnosis("Stripe could not be reached to check whether this payment went through, and our "
                         "records have no charge for it yet. Press Recover to ask Stripe again; never tell the "
                         "customer they were not charged until it answers.", "recover", "Check with Stripe",
                         "checking")
    if stripe.status == UNKNOWN and order.state not in OPEN_STATES:
        # Settled orders: what settle recorded from Stripe stands, said to be unconfirmed just now.
        recorded = StripePayment("succeeded" if order.amount_received_cents is not None else None, "",
                                 order.amount_received_cents, order.paid_currency, order.amount_refunded_cents,
                                 order.state == S.DISPUTED)
        found = order_diagnosis(order, now=now, money=money, payment_intent=_Recorded(recorded))
        return replace(found, summary=found.summary.replace(" Nothing is wrong.", "")
                       + " (Stripe could not be reached just now to confirm this; reload to check.)")
    # Only where a sentence leans on the sweep: it finishes charged orders, retries refunds, refunds held money.
    sweep = sweep_notice(now=now) if order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID, S.NEEDS_REVIEW,
                                                     S.REFUND_PENDING) else None
    says = f"Stripe says {(stripe.status or '').replace('_', ' ')}"
    if order.state in (S.PAID, S.ACTIVE) and stripe.status not in (None, UNKNOWN, "succeeded"):
        return Diagnosis(f"Our order says {order.get_state_display().lower()}, but {says}: Stripe holds no completed "
                         "payment for it. Recover puts it in front of a person for review; do not tell the customer "
                         "they paid.", "recover", "Recover now", "checking")
    if order.state == S.PAID and stripe.status is None:
        return Diagnosis("Our order says paid, but no Stripe payment is attached to it, so Recover has nothing to "
                         "check. Look for the payment in Stripe's dashboard by the customer's email before telling "
                         "them anything.", "stripe_dashboard", "Open in Stripe", "checking")
    if order.state in OPEN_STATES and charged_at is not None and charged_at != UNKNOWN:
        return _charged_not_finished(order, stripe, amount, charged_at, sweep=sweep, now=now)
    if order.state in OPEN_STATES:
        return _open_diagnosis(order, stripe)
    if order.state == S.NEEDS_REVIEW:
        return _review_diagnosis(order, stripe, amount, sweep=sweep)
    if stripe.status is None or not stripe.succeeded:
        # A refund, a dispute or a cancel on our side with no completed payment in Stripe behind it.
        if order.state == S.CANCELED and stripe.status in (None, "canceled"):
            why = "" if stripe.status is None else " Stripe canceled its payment attempt too."
            return Diagnosis(f"Canceled before any payment; nothing was charged.{why}", "none", "", "not_charged")
        if order.state == S.CANCELED and stripe.status in UNFINISHED:
            return Diagnosis(f"Canceled on our side, but its payment attempt is still open in Stripe ({says}): "
                             f"nothing is charged, yet the customer could still pay it. Press {CANCEL_ATTEMPT}.",
                             "cancel_attempt", CANCEL_ATTEMPT, "not_charged")
        if order.state == S.CANCELED:
            return Diagnosis(f"Canceled on our side, but {says} for its payment: nothing is charged yet. If it "
                             "succeeds, Recover puts it up for review; watch it in Stripe's dashboard.",
                             "stripe_dashboard", "Open in Stripe", "checking")
        what = "no Stripe payment is attached to it" if stripe.status is None else says
        return Diagnosis(f"Our order says {order.get_state_display().lower()}, but {what}: nothing here was charged "
                         "through Stripe. Check the timeline and Stripe's dashboard by the customer's email before "
                         "telling them anything.", "stripe_dashboard", "Open in Stripe", "checking")
    if stripe.fully_refunded and order.state != S.REFUNDED:
        return Diagnosis(f"Stripe shows the {stripe.money()} payment refunded in full; our order says "
                         f"{order.get_state_display().lower()}. Press Recover to record the refund: access ends and "
                         "the customer gets the refund email.", "recover", "Recover now", "checking")
    if order.state == S.REFUND_PENDING:
        if stripe.disputed:
            return Diagnosis(f"A refund was requested, but the customer's bank disputed the {amount} payment: Stripe "
                             "refuses refunds of disputed payments. Answer the dispute in Stripe's dashboard.",
                             "stripe_dashboard", "Open in Stripe", "disputed")
        follow_up = ("the sweep asks again every minute." if sweep is None
                     else f"{sweep.title}, so nothing asks again on its own: press Check with Stripe.")
        return Diagnosis(f"A refund was requested at {_when(order.state_changed_at)} and Stripe has not confirmed "
                         f"it yet; {follow_up}", "recover", "Check with Stripe", "refund_in_progress")
    if order.state == S.REFUNDED:
        if stripe.refunded < (stripe.received or 0) or stripe.disputed:
            left = format_money((stripe.received or 0) - stripe.refunded, stripe.currency)
            why = "the bank disputed it" if stripe.disputed else f"{left} of it is not refunded in Stripe"
            return Diagnosis(f"Our order says refunded, but {why}. Check it in Stripe's dashboard (refund the rest "
                             "there if it is owed).", "stripe_dashboard", "Open in Stripe", "checking")
        full = "in full " if order.amount_refunded_cents >= order.paid_cents else ""
        return Diagnosis(f"Refunded {full}({order.refunded_display} of {order.paid_display}) on "
                         f"{_when(order.state_changed_at)}. {order.refund_reason}".strip(), "none", "", "refunded")
    if order.state == S.DISPUTED:
        if not stripe.disputed:
            return Diagnosis(f"Our order says disputed, but Stripe's charge shows no dispute for the {amount} "
                             "payment. Check it in Stripe's dashboard.", "stripe_dashboard", "Open in Stripe",
                             "checking")
        return Diagnosis(f"The customer's bank disputed the {amount} payment on {_when(order.state_changed_at)}. "
                         "Answer the dispute in Stripe's dashboard; access carries on meanwhile.",
                         "stripe_dashboard", "Open in Stripe", "disputed")
    if order.state == S.CANCELED:
        return Diagnosis(f"A payment of {stripe.money()} arrived for an order that was canceled. Press Recover: it "
                         "puts the order up for review, where you Accept or Refund it.", "recover", "Recover now",
                         "checking")
    # Active, and Stripe has the payment.
    if stripe.disputed:
        return Diagnosis(f"Active, but the customer's bank disputed the {amount} payment in Stripe and our order "
                         "does not know yet. Press Recover to record it, then answer the dispute in Stripe's "
                         "dashboard.", "recover", "Recover now", "disputed")
    if stripe.refunded != order.amount_refunded_cents:
        return Diagnosis(f"Active; Stripe shows {format_money(stripe.refunded, stripe.currency)} of the "
                         f"{stripe.money()} payment refunded, our order {order.refunded_display}. Press Recover to "
                         "record it; the customer keeps their access.", "recover", "Recover now", "active")
    if stripe.received != order.paid_cents or stripe.received != order.amount_cents:
        return Diagnosis(f"Active, but Stripe took {stripe.money()} where our order records {order.paid_display} "
                         f"and asked {order.amount_display}. Check the timeline; refund any difference that is "
                         "owed.", "refund", "Refund", "active")
    return _active_diagnosis(order, amount)


def _charged_not_finished(order: Order, stripe: StripePayment, amount: str, charged_at, *, sweep, now) -> Diagnosis:
    """Stripe took the money and our order never caught up: Recover settles it, whatever follows."""
    reply = "offer_refund" if order.amount_received_cents is not None else "checking"
    if sweep is None:
        finishing = (f"The sweep finishes such orders every minute, from "
                     f"{_when(max(charged_at + settings.RECONCILE_GRACE, now))}.")
    else:
        finishing = f"{sweep.title}, so nothing will finish it on its own: press Recover now."
    if stripe.fully_refunded:
        return Diagnosis(f"Charged {amount} at {_when(charged_at)} and refunded in full in Stripe since; our order "
                         "never caught up. Press Recover to record the refund (the customer gets the refund email).",
                         "recover", "Recover now", "checking")
    then = ""
    if stripe.succeeded and stripe.received != order.amount_cents:
        then = (f" Stripe took {stripe.money()} where the order asks {order.amount_display}: Recover puts it up for "
                "review, where you Accept or Refund it.")
    elif stripe.disputed:
        then = " The bank has disputed it since: after Recover, answer the dispute in Stripe's dashboard."
    return Diagnosis(
        f"Charged {amount} at {_when(charged_at)}; the order never activated because nothing finished it "
        f"after the payment (the server stopped, or the webhook was lost). {finishing}{then}", "recover",
        "Recover now", reply)


def _open_diagnosis(order: Order, stripe: StripePayment) -> Diagnosis:
    """An open order Stripe took no money for: what the attempt is waiting on, and what ends it."""
    if stripe.status is None and order.state == S.PENDING:
        return Diagnosis("No payment taken: the customer never reached the payment step. The order is "
                         "canceled automatically after a day.", "reply_not_charged", "Reply: not charged",
                         "not_charged")
    if stripe.status is None:
        return Diagnosis(f"Our order says {order.get_state_display().lower()}, but no Stripe payment is attached to "
                         "it: nothing was charged through it. Check the timeline; the customer owes nothing for it.",
                         "reply_not_charged", "Reply: not charged", "not_charged")
    if stripe.status == "requires_action":
        return Diagnosis(f"No payment taken: the customer's bank asked them to confirm the payment (3-D Secure) on "
                         f"{_when(order.created_at)} and they have not finished. Nothing is charged unless they do; "
                         f"they can finish or pay again from their status page, or {CANCEL_ATTEMPT} ends it.",
                         "cancel_attempt", CANCEL_ATTEMPT, "not_charged")
    if stripe.status in UNFINISHED and stripe.error:
        return Diagnosis(f"The payment did not go through ({stripe.error}); no money was taken. The customer can try "
                         f"again from their status page, or {CANCEL_ATTEMPT} ends the attempt.",
                         "cancel_attempt", CANCEL_ATTEMPT, "not_charged")
    if stripe.status in UNFINISHED:
        return Diagnosis(f"No payment taken: the customer reached the payment step on {_when(order.created_at)} "
                         "but did not pay (Stripe is waiting for a card). Nothing is owed either way; they can pay "
                         f"from their status page, or {CANCEL_ATTEMPT} ends the attempt.",
                         "cancel_attempt", CANCEL_ATTEMPT, "not_charged")
    if stripe.status == "processing":
        return Diagnosis("Stripe is processing the payment (money in flight, not yet charged or refused); it decides "
                         "on its own, in seconds for cards and up to days for bank debits. Check with Stripe again "
                         "later; tell the customer it is not final yet.", "recover", "Check with Stripe", "checking")
    if stripe.status == "requires_capture":
        return Diagnosis("The card is authorised but the payment was never captured: not charged yet. Backstop "
                         "captures automatically, so check it in Stripe's dashboard (capture or cancel it there).",
                         "stripe_dashboard", "Open in Stripe", "checking")
    # canceled (a paid order never gets here: it has paid_at, so it is charged, above)
    return Diagnosis("Stripe canceled the payment attempt; nothing was charged. Press Recover to record it: "
                     "the order is canceled and the customer may start again.", "recover", "Recover now",
                     "not_charged")


def _review_diagnosis(order: Order, stripe: StripePayment, amount: str, *, sweep) -> Diagnosis:
    """Held for review: Recover (settle) never activates it; a person's Accept or Refund ends it."""
    held = ""
    if order.held_since:
        held = (f" Money held since {_when(order.held_since)}; refunded automatically at "
                f"{_when(order.refund_deadline_at)} unless finished first.")
        if sweep is not None and order.refund_deadline_at:
            held += f" {sweep.title}, and it is what makes that refund: watch the deadline."
    why = order.attention_reason or "see the timeline"
    if stripe.fully_refunded:
        return Diagnosis(f"Needs review ({why}), and Stripe shows the {stripe.money()} payment refunded in full. "
                         "Press Recover to record the refund; the customer gets the refund email.", "recover",
                         "Recover now", "checking")
    if stripe.disputed:
        return Diagnosis(f"Charged {amount} and held for review ({why}), and the customer's bank has disputed it: "
                         "Stripe refuses refunds of disputed payments. Answer the dispute in Stripe's dashboard.",
                         "stripe_dashboard", "Open in Stripe", "disputed")
    if stripe.status in UNFINISHED or stripe.status == "canceled":
        return Diagnosis(f"Needs review ({why}), and Stripe holds no money for it ({stripe.status.replace('_', ' ')}): "
                         "nothing was charged. Tell the customer so; they may check out again.",
                         "reply_not_charged", "Reply: not charged", "not_charged")
    if stripe.status in ("processing", "requires_capture"):
        return Diagnosis(f"Needs review ({why}), and Stripe has not finished the payment "
                         f"({stripe.status.replace('_', ' ')}): nothing is charged yet. Watch it in Stripe's "
                         "dashboard.", "stripe_dashboard", "Open in Stripe", "checking")
    if order_acceptable(order) or (stripe.succeeded and not stripe.refunded and stripe.received != order.amount_cents):
        taken = stripe.money() if stripe.succeeded else order.paid_display
        return Diagnosis(f"Charged {amount}, but it cannot activate on its own: {why}.{held} Recover cannot "
                         f"change what Stripe took: Accept {taken} (the plan is granted for it) or Refund.",
                         "accept", f"Accept {taken}", "held")
    if order.amount_received_cents is not None or stripe.succeeded:
        return Diagnosis(f"Charged {amount}, but it cannot activate on its own: {why}.{held} Recover cannot "
                         "finish it: check the payment in Stripe's dashboard, then Refund.", "refund", "Refund",
                         "held")
    return Diagnosis(f"Needs review: {why}. No payment is recorded on the order; check it in Stripe's "
                     "dashboard before telling the customer anything.", "stripe_dashboard", "Open in Stripe",
                     "checking")


def _active_diagnosis(order: Order, amount: str) -> Diagnosis:
    access = order_access(order)
    until = f"; access until {console_date(access.until)}" if access.until else ""
    refunded = f" {order.refunded_display} refunded." if order.amount_refunded_cents else ""
    renewal = "Renewal, chosen at checkout to add time to the running plan: " if order.renewal else ""
    paid = f"{renewal}Paid {amount} on {_when(order.paid_at)} and active{until}.{refunded}"
    others = order_other_payments(order)
    if others:
        return Diagnosis(f"{paid} {_two_payments(order, others)} If they meant to buy once, refund one: "
                         f"{refund_effect(order, full=True)}", "refund", "Refund one payment", "two_payments")
    confirmation = _confirmation_facts(order)
    if confirmation.trouble:
        return Diagnosis(f"{paid} {confirmation.trouble} Resend it, or reply with the order page link.",
                         "resend", "Resend confirmation", "active")
    wait = _activation_wait(order)
    if wait:
        # The customer waited for their account: what they want to hear first is that it is active.
        return Diagnosis(f"{paid} The customer waited {int(wait.total_seconds() // 60)} minutes after paying for it "
                         f"to activate. {confirmation.line}", "resend", "Resend confirmation",
                         "resent" if confirmation.reply == "resent" else "active")
    # "Nothing is wrong" only for a payment Stripe took whole, as asked (order_diagnosis checked Stripe).
    verdict = ("A partial refund; the customer keeps their access." if order.amount_refunded_cents
               else "Nothing is wrong.")
    return Diagnosis(f"{paid} {confirmation.line} {verdict}".replace("  ", " "), "resend",
                     "Resend confirmation", confirmation.reply)
