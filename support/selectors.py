"""Support-console reads: an order as a case (diagnosis, timeline, replies). No writes here."""

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from itertools import pairwise

from django.conf import settings
from django.utils import timezone
from djstripe import models as djstripe_models

from billing import stripe_api
from billing.models import Order, OrderState
from billing.money import format_money
from billing.selectors import access_after_refund, customer_day
from support.timefmt import console_date, console_day_bounds, console_time, console_today

S = OrderState
UNKNOWN = "unknown"  # Stripe could not be reached
NOT_ASKED = "not asked"  # Stripe was not asked (only our records and the mirror were read)


@dataclass(frozen=True)
class Diagnosis:
    summary: str  # what happened, in plain words
    action: str  # recover | refund | reply_not_charged | resend | none | stripe_dashboard
    action_label: str
    reply: str = ""  # the key of the prefilled reply that fits (see order_replies)


def _when(moment: datetime | None) -> str:
    return console_time(moment) if moment else "an unknown time"


@dataclass(frozen=True)
class Money:
    """What support reads about an order's money: one answer for the case header, the search
    results, the queue and the diagnosis, so none of them calls a charged customer unpaid."""

    amount: str  # Stripe's amount once it took money, else the price asked (both where they differ)
    charged_at: datetime | str | None  # when Stripe took it; UNKNOWN if Stripe could not be asked
    label: str  # e.g. "Charged $249.00, not yet active"
    state: str  # the order's state as support should read it, e.g. "Charged, not finished"


# Orders whose payment is still open: our row may lag Stripe (a lost webhook, a closed tab).
OPEN_STATES = (S.PENDING, S.PROCESSING, S.FAILED, S.PAID)


def order_money(order: Order, *, ask_stripe: bool = True, payment_intent=None) -> Money:
    """Label the order's money from the facts the diagnosis reads: what settle recorded, else the
    mirror's succeeded charge, else Stripe's PaymentIntent (a read; `ask_stripe=False` skips it and
    says so). `payment_intent`, when the caller already read it, saves the call."""
    asked = order.amount_display
    amount = order.paid_display if order.amount_received_cents is not None else asked
    if order.amounts_differ:
        amount += f" (the order asked {asked})"
    if order.paid_at is not None:
        charged_at = order.paid_at
    elif ask_stripe or payment_intent is not None:
        charged_at = _charged_at(order, payment_intent=payment_intent)
    else:
        charged_at = _charged_at(order, payment_intent=NOT_ASKED)
    state = order.get_state_display()
    unchecked = charged_at == NOT_ASKED
    if unchecked:
        charged_at = None  # our records and the mirror show no charge
    if order.state in OPEN_STATES and unchecked and _recent(order):
        # The mirror may not have a charge made minutes ago: say what was not checked.
        label = f"{amount}, not checked with Stripe here (open the case)"
    elif order.state in OPEN_STATES and charged_at == UNKNOWN:
        label, state = f"{amount}, maybe charged: Stripe could not be reached", "Not known yet"
    elif order.state in OPEN_STATES and charged_at is not None:
        if order.amount_received_cents is None:
            amount = amount.replace(asked, _stripe_amount(order, payment_intent) or asked, 1)
        label, state = f"Charged {amount}, not yet active", "Charged, not finished"
    elif order.state == S.PROCESSING:
        label = f"{amount} in progress at Stripe, not yet charged"
    elif order.state in (S.PENDING, S.FAILED, S.CANCELED):
        label = f"Not charged ({amount} asked)"
    elif order.state == S.ACTIVE:
        refunded = f", {order.refunded_display} refunded" if order.amount_refunded_cents else ""
        label = f"Paid {amount}{refunded}, active"
    elif order.state == S.NEEDS_REVIEW and order.amount_received_cents is not None:
        label = f"Charged {amount}, held: not active"
    elif order.state == S.NEEDS_REVIEW:
        label = f"{amount}, needs review: check the payment in Stripe"
    elif order.state == S.REFUND_PENDING:
        label = f"Charged {amount}, refund in progress"
    elif order.state == S.REFUNDED:
        label = f"Refunded {order.refunded_display} of {order.paid_display}"
    else:  # disputed
        label = f"Charged {amount}, disputed by the bank"
    if getattr(order, "renewal", False) and order.state not in (S.PENDING, S.FAILED, S.CANCELED):
        label = f"Renewal: {label}"
    return Money(amount, charged_at, label, state)


def _recent(order: Order) -> bool:
    """Young enough that Stripe may know of a payment the mirror and the sweep have not seen yet."""
    from datetime import timedelta

    return order.created_at >= timezone.now() - timedelta(days=OPEN_PAYMENT_LOOKBACK_DAYS)


def _stripe_amount(order: Order, payment_intent=None) -> str:
    """What Stripe took for an order settle has not recorded yet: the mirror's charge, or the
    PaymentIntent read a moment ago."""
    charge = (djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id,
                                                    status="succeeded").order_by("-created").first())
    if charge is not None:
        data = charge.stripe_data or {}
        return format_money(data.get("amount", 0), data.get("currency", order.currency))
    if payment_intent is not None and payment_intent not in (NOT_ASKED, UNKNOWN):
        return format_money(payment_intent.amount_received, payment_intent.currency)
    return ""


@dataclass(frozen=True)
class StripePayment:
    """What Stripe says of an order's PaymentIntent, as the diagnosis reads it."""

    status: str | None  # Stripe's status; None: the order has no PaymentIntent; UNKNOWN: not reached
    error: str = ""  # the last attempt's error message, if Stripe reports one
    received: int | None = None  # amount_received, once succeeded
    currency: str = ""
    refunded: int = 0
    disputed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def fully_refunded(self) -> bool:
        return self.succeeded and bool(self.received) and self.refunded >= self.received

    def money(self) -> str:
        return format_money(self.received or 0, self.currency or "usd")


def order_payment_intent(order: Order):
    """The order's PaymentIntent as Stripe has it now (with its latest charge), None if the order
    has none, UNKNOWN if Stripe cannot be reached. A read: the case page asks once and hands it on."""
    if not order.stripe_payment_intent_id:
        return None
    try:
        return stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    except stripe_api.StripeError:
        return UNKNOWN


@dataclass(frozen=True)
class _Recorded:
    """Stripe's facts as settle last recorded them on the order (when Stripe cannot be reached)."""

    payment: StripePayment


def stripe_payment(payment_intent) -> StripePayment:
    if isinstance(payment_intent, _Recorded):
        return payment_intent.payment
    if payment_intent is None or payment_intent == UNKNOWN:
        return StripePayment(payment_intent)
    error = payment_intent.get("last_payment_error")
    charge = payment_intent.get("latest_charge")
    charge = charge if charge and not isinstance(charge, str) else {}
    succeeded = payment_intent.status == "succeeded"
    return StripePayment(payment_intent.status, (error.get("message") or "declined") if error else "",
                         payment_intent.get("amount_received") if succeeded else None, payment_intent.currency,
                         charge.get("amount_refunded") or 0, bool(charge.get("disputed")))


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
    from billing.selectors import order_access

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


# Two payments for the same plan this close together, neither made through checkout's renewal offer:
# "paid twice", a second payment nobody chose (the queue's "duplicate"). A renewal is chosen.
DUPLICATE_PAYMENT_WINDOW_MINUTES = 60


def order_other_payments(order: Order) -> list[Order]:
    """The customer's other paid orders for the same plan made within DUPLICATE_PAYMENT_WINDOW_MINUTES
    of this one, oldest first, when neither was a renewal checkout offered (Order.renewal). Since
    decision 0011 a second paid year stacks after the first: a real purchase, and still one a person
    should see, since customers often did not mean it."""
    from datetime import timedelta

    if order.state not in (S.PAID, S.ACTIVE) or order.renewal:
        return []
    window = timedelta(minutes=DUPLICATE_PAYMENT_WINDOW_MINUTES)
    return list(Order.objects.filter(email=order.email, plan_id=order.plan_id, state__in=[S.PAID, S.ACTIVE],
                                     renewal=False, created_at__gte=order.created_at - window,
                                     created_at__lte=order.created_at + window)
                .exclude(pk=order.pk).select_related("plan").order_by("created_at"))


def _two_payments(order: Order, others: list[Order]) -> str:
    from billing.selectors import order_access

    orders = sorted([order, *others], key=lambda o: o.created_at)
    listed = ", ".join(f"{o.reference} ({o.paid_display}, {_when(o.paid_at)})" for o in orders[:-1])
    listed += f" and {orders[-1].reference} ({orders[-1].paid_display}, {_when(orders[-1].paid_at)})"
    latest = order_access(orders[-1])
    months = orders[-1].plan.duration_months
    added = (f"the second added {months} months" if len(orders) == 2
             else f"each after the first added {months} months")
    to = f", to {console_date(latest.ends_at)}" if latest.granted and latest.in_force else " once active"
    return f"This customer has {len(orders)} paid orders for the {order.plan.name} plan: {listed}; {added}{to}."


@dataclass(frozen=True)
class _ConfirmationFacts:
    line: str  # what the timeline says of the confirmation email, for support
    trouble: str  # why it may not have reached the customer, if so
    reply: str  # the reply key these facts back: resent | confirmation_sent | active
    sent_at: datetime | None = None
    resent_at: datetime | None = None
    on_its_way: bool = False  # queued or being sent right now


def _confirmation_facts(order: Order) -> _ConfirmationFacts:
    """The confirmation email as the outbox records it: sent (when), sent again after a resend,
    on its way, or in trouble. A reply says "sent" only on a sent row, "sent again" only after a
    resend recorded on the timeline and sent after it."""
    from billing.models import OutboundEmail

    email = order.emails.filter(kind=OutboundEmail.Kind.CONFIRMATION).first()
    if email is None:
        return _ConfirmationFacts("No confirmation email is recorded.", "", "active")
    if email.status in (OutboundEmail.Status.FAILED, OutboundEmail.Status.UNCERTAIN) or email.esp_status in (
            "bounced", "rejected", "failed", "complained"):
        state = email.esp_status or email.get_status_display().lower()
        return _ConfirmationFacts("", f"The confirmation to {email.recipient} did not arrive ({state}).", "active")
    if email.status != OutboundEmail.Status.SENT or email.sent_at is None:
        return _ConfirmationFacts(f"The confirmation to {email.recipient} is waiting to send.", "", "active",
                                  on_its_way=True)
    resend = (order.events.filter(actor__startswith="support:", reason__startswith=RESEND_EVENT_PREFIX
                                  + OutboundEmail.Kind.CONFIRMATION.label)
              .order_by("-created_at").values_list("created_at", flat=True).first())
    if resend is not None and email.sent_at >= resend:
        return _ConfirmationFacts(f"The confirmation was sent again to {email.recipient} at {_when(email.sent_at)}.",
                                  "", "resent", email.sent_at, email.sent_at)
    return _ConfirmationFacts(f"The confirmation was sent to {email.recipient} at {_when(email.sent_at)}.", "",
                              "confirmation_sent", email.sent_at)


# How support.services.outbound_email_resend records a resend on the timeline.
RESEND_EVENT_PREFIX = "Asked to resend: "


def refund_effect(order: Order, *, full: bool) -> str:
    """What a refund would do to the customer's access, in the words support reads before pressing."""
    from billing.selectors import access_until_without, order_access

    if not full:
        return ("A partial refund: the customer keeps their access. If you change the amount, you'll be asked "
                "to confirm the new one.")
    if not order_access(order).in_force:
        return ("A full refund: this order gives no access now, so no access changes; the customer gets one "
                "email saying why.")
    remains = access_until_without(order)
    if remains:
        return (f"A full refund takes back only the time this payment bought: the customer keeps access until "
                f"{console_date(remains)} from their other payments, and gets one email saying why.")
    return "A full refund: the customer's access ends at once, and they get one email saying why."


# --- The sweep watched: what support must hear when the safety net itself is down -----------------

@dataclass(frozen=True)
class SweepNotice:
    key: str  # one alert per outage: everything since the last clean pass
    title: str  # e.g. "The sweep is failing: its last 3 passes finished with errors"
    detail: str


def sweep_notice(*, now: datetime | None = None, health=None) -> SweepNotice | None:
    """None while the sweep does its job; else what is wrong with it and what to do, for the
    console's landing page, the case pages and the team's alert. `health` is
    billing.selectors.sweep_health(now=now), when the caller already has it."""
    from datetime import timedelta

    from billing.selectors import SWEEP_STALE_AFTER_MINUTES, sweep_health

    now = now or timezone.now()
    health = health or sweep_health(now=now)
    if health.healthy:
        return None
    stuck_for = timedelta(minutes=SWEEP_STALE_AFTER_MINUTES)
    if health.running_since and health.running_since < now - stuck_for:
        title = f"The sweep is stuck: a pass started at {_when(health.running_since)} has not finished"
    elif health.stalled and health.last_finished_at is None:
        title = "The sweep has never run"
    elif health.stalled:
        title = f"The sweep has not finished a pass since {_when(health.last_finished_at)}"
    else:
        title = f"The sweep is failing: its last {health.failures} passes finished with errors"
    facts = [f"Last clean pass: {_when(health.last_ok_at) if health.last_ok_at else 'none recorded'}."]
    if health.failures and health.last_error:
        facts.append(f"Newest error: {health.last_error}.")
    facts.append("Until it recovers, nothing finishes charged orders, retries refunds or refunds held money "
                 "at its deadline on its own: press Recover on each case in the queue. Check that the worker "
                 "(manage.py qcluster) is running and that Stripe answers; Reconcile runs shows each pass.")
    return SweepNotice(key=f"sweep-down:after-{health.last_ok_id or 'none'}", title=title, detail=" ".join(facts))


# --- Sign-in links: did the customer ask? ------------------------------------------------------

# An email from the customer this recent may be what a sign-in link answers ("as you asked").
SIGNIN_REQUEST_DAYS = 14


def signin_link_request(order: Order):
    """The customer's newest email on this case that may ask for a way in: from the order's own,
    verified address, in the last SIGNIN_REQUEST_DAYS. None if there is none."""
    from datetime import timedelta

    since = timezone.now() - timedelta(days=SIGNIN_REQUEST_DAYS)
    for message in order.inbound_messages.filter(received_at__gte=since).order_by("-received_at")[:20]:
        if inbound_sender_owns(order, from_email=message.from_email, sender_authenticated=message.sender_authenticated):
            return message
    return None


# --- Recover, when it cannot finish -------------------------------------------------------------

def order_acceptable(order: Order) -> bool:
    """Held for review because Stripe took another amount than the order asked, nothing refunded:
    support may Accept what Stripe took (billing.services.order_accept_amount) instead of refunding."""
    return order.state == S.NEEDS_REVIEW and order.amounts_differ and not order.amount_refunded_cents


def recover_outcome(order: Order) -> tuple[bool, str]:
    """What support reads after pressing Recover: (finished, words). An order still held for review
    says why it cannot finish and what to do, from its attention reason and deadline."""
    from billing.services import UNFINISHED_PAYMENT, abandoned_payment_after_words

    if order.state in (S.PENDING, S.FAILED) and order.payment_status in UNFINISHED_PAYMENT:
        # Recover has nothing to finish: the customer has not paid. Say so, and what ends it.
        waiting = ("the customer's bank asked them to confirm and they have not"
                   if order.payment_status == "requires_action" else "no card has gone through")
        return False, (f"{order.reference}: {order.get_state_display()}. Stripe took nothing: {waiting}. The "
                       "customer can finish from their status page; Cancel payment attempt ends it now, and the "
                       f"sweep cancels it on its own after {abandoned_payment_after_words()}.")
    if order.state != S.NEEDS_REVIEW:
        return True, f"{order.reference}: {order.get_state_display()}"
    why = order.attention_reason or "the timeline shows why"
    held = ""
    if order.held_since and order.refund_deadline_at:
        held = (f" The customer's {order.paid_display} is held and is refunded automatically at "
                f"{_when(order.refund_deadline_at)} unless the order is finished first.")
    if order_acceptable(order):
        todo = "Recover cannot fix an amount Stripe took differently: Accept what Stripe took, or Refund."
    elif order.amount_received_cents is not None:
        todo = "Check the payment in Stripe's dashboard, then Refund the customer."
    else:
        todo = "Check the payment in Stripe's dashboard before telling the customer anything."
    return False, f"{order.reference} still needs review. Recover cannot finish it: {why}.{held} {todo}"




def _charged_at(order: Order, *, payment_intent=None) -> datetime | str | None:
    """When Stripe took the money for an order we have not finished: the mirror, else Stripe.

    A case page must not say "no payment" because a webhook was lost; for an open order with a
    PaymentIntent it asks Stripe (a read; Recover is what acts on it), unless the caller passes the
    PaymentIntent it read, or NOT_ASKED to read only the mirror.
    """
    if not order.stripe_payment_intent_id or order.state not in OPEN_STATES:
        return None
    charge = (djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id,
                                                    status="succeeded").order_by("-created").first())
    if charge is not None:
        return charge.created
    if payment_intent in (NOT_ASKED, UNKNOWN):
        return payment_intent
    try:
        pi = payment_intent or stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    except stripe_api.StripeError:
        return UNKNOWN
    latest = pi.get("latest_charge")
    if pi.status == "succeeded" and latest and not isinstance(latest, str):
        return datetime.fromtimestamp(latest.created, tz=UTC)
    return None


def stripe_dashboard_url(stripe_id: str) -> str:
    mode = "" if settings.STRIPE_LIVE_MODE else "test/"
    section = {"pi_": "payments", "ch_": "payments", "cus": "customers", "re_": "refunds",
               "dp_": "disputes", "du_": "disputes"}.get(stripe_id[:3], "search?query=")
    separator = "" if section.endswith("=") else "/"
    return f"https://dashboard.stripe.com/{mode}{section}{separator}{stripe_id}"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # event | note | email | stripe | alert
    title: str
    detail: str = ""
    link: str = ""


def order_timeline(order: Order) -> list[TimelineEntry]:
    """Everything that happened to the order, newest first, from every source we have."""
    labels = dict(S.choices)
    entries = []
    for event in order.events.all():
        if event.to_state and event.from_state:
            title = f"{labels.get(event.from_state, event.from_state)} → {labels.get(event.to_state)}, by {event.actor}"
        elif event.to_state:
            title = f"{labels.get(event.to_state)}, by {event.actor}"
        else:
            title = f"{event.actor}"
        entries.append(TimelineEntry(event.created_at, "event", title, event.reason))
    for note in order.notes.select_related("author"):
        entries.append(TimelineEntry(note.created_at, "note", f"Note by {note.author.email}", note.body))
    for email in order.emails.all():
        delivery = f", {email.esp_status}" if email.esp_status else ""
        entries.append(TimelineEntry(email.sent_at or email.created_at, "email",
                                     f"Email: {email.get_kind_display()} to {email.recipient}",
                                     f"{email.get_status_display()}{delivery}"
                                     + (f" — {email.last_error}" if email.last_error else "")))
    for alert in order.alerts.all():
        entries.append(TimelineEntry(alert.created_at, "alert", f"Team alerted: {alert.get_kind_display()}",
                                     alert.summary))
    pi_id = order.stripe_payment_intent_id
    if pi_id:
        for pi in djstripe_models.PaymentIntent.objects.filter(id=pi_id):
            data = pi.stripe_data or {}
            entries.append(TimelineEntry(pi.created or order.created_at, "stripe", f"Stripe PaymentIntent {pi.id}",
                                         f"{format_money(data.get('amount', 0), data.get('currency', 'usd'))}, "
                                         f"{data.get('status', '?')}", stripe_dashboard_url(pi.id)))
        charges = list(djstripe_models.Charge.objects.filter(payment_intent_id=pi_id))
        for charge in charges:
            data = charge.stripe_data or {}
            card = ((data.get("payment_method_details") or {}).get("card") or {})
            detail = f"{format_money(data.get('amount', 0), data.get('currency', 'usd'))}, {charge.status}"
            if card.get("last4"):
                detail += f", {str(card.get('brand', 'card')).title()} ending {card['last4']}"
            if data.get("amount_refunded"):
                detail += f", {format_money(data['amount_refunded'], data.get('currency', 'usd'))} refunded"
            entries.append(TimelineEntry(charge.created or order.created_at, "stripe", f"Stripe charge {charge.id}",
                                         detail, stripe_dashboard_url(charge.id)))
        charge_ids = [c.id for c in charges]
        for refund in djstripe_models.Refund.objects.filter(charge_id__in=charge_ids):
            data = refund.stripe_data or {}
            entries.append(TimelineEntry(refund.created or order.created_at, "stripe", f"Stripe refund {refund.id}",
                                         f"{format_money(data.get('amount', 0), data.get('currency', 'usd'))}, "
                                         f"{data.get('status', '?')}", stripe_dashboard_url(refund.id)))
        for dispute in djstripe_models.Dispute.objects.filter(charge_id__in=charge_ids):
            data = dispute.stripe_data or {}
            entries.append(TimelineEntry(dispute.created or order.created_at, "stripe", f"Stripe dispute {dispute.id}",
                                         f"{data.get('reason', '')}, {data.get('status', '?')}",
                                         stripe_dashboard_url(dispute.id)))
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


# The prefilled replies: kind, specific, never blaming the customer. Each is offered only when the
# facts its sentences state hold (order_replies); {placeholders} are filled in from those facts.
REPLIES = {
    "active": ("Your account is active",
               "Hello{name},\n\nThank you for writing. Your payment of {amount} on {paid} came through, and your "
               "{plan} plan is active until {until}.{confirmation} You can follow your order here:\n{status_url}"
               "\n\nYour reference is {reference}.{sorry}\n\n{agent}"),
    "confirmation_sent": ("Your confirmation",
                          "Hello{name},\n\nYour confirmation for order {reference} was sent to {email} on "
                          "{confirmation_at}. If you can't find it, please check your spam folder. Your {plan} plan "
                          "is active until {until}, and your order page is always here:\n{status_url}\n\n{agent}"),
    "resent": ("Your confirmation, sent again",
               "Hello{name},\n\nWe sent your confirmation for order {reference} again to {email} on {resent_at}; "
               "please check your spam folder too. Your {plan} plan is active until {until}, and your order page "
               "is always here:\n{status_url}\n\n{agent}"),
    "two_payments": ("Your {count} payments",
                     "Hello{name},\n\nThank you for writing. We can see {count} payments for the {plan} plan: "
                     "{payments}. Each one adds {months} months, so your plan runs until {until}.\n\nIf you meant "
                     "to buy once, reply to this email and we'll refund {amount} for order {reference}; {after_refund}"
                     "\n\n{agent}"),
    "refunded": ("Your refund",
                 "Hello{name},\n\nWe've refunded {refunded} to your card{card} for order {reference}{refunded_on}."
                 "{part_of} Banks usually take 5–10 days to show it on your statement; you don't need to do "
                 "anything.{access}\n\nIf there's anything else we can do, just reply.\n\n{agent}"),
    "refund_in_progress": ("Your refund",
                           "Hello{name},\n\nWe've asked our payment provider to refund {refunding} for order "
                           "{reference}, and it is confirming it now. Once it has, we'll email you; banks usually "
                           "take 5–10 days to show a refund on your statement.\n\n{agent}"),
    "offer_refund": ("About your order {reference}",
                     "Hello{name},\n\nWe have your payment of {amount} from {paid}, and we're sorry your account "
                     "isn't ready yet. We're finishing it now. If you'd rather not wait, reply to this email and "
                     "we'll refund you in full straight away; either way, you won't be charged twice.\n\n"
                     "You can follow your order here:\n{status_url}\n\n{agent}"),
    "held": ("About your order {reference}",
             "Hello{name},\n\nWe have your payment of {amount} from {paid}, and we're sorry your account isn't "
             "ready yet: someone on our team needs to check your order before it can be switched on.{deadline} If "
             "you'd rather not wait, reply to this email and we'll refund you in full straight away; either way, "
             "you won't be charged twice.\n\nYou can follow your order here:\n{status_url}\n\n{agent}"),
    "checking": ("About your order {reference}",
                 "Hello{name},\n\nThank you for writing. We're checking your order {reference} with our payment "
                 "provider now, and we'll write again as soon as we know. You won't be charged twice. You can also "
                 "follow your order here:\n{status_url}\n\n{agent}"),
    "not_charged": ("About your order {reference}",
                    "Hello{name},\n\nThank you for writing. We checked order {reference}: {what}, and no money was "
                    "taken, so you owe us nothing.{again}\n\n{agent}"),
    "disputed": ("About your payment for order {reference}",
                 "Hello{name},\n\nYour bank has told us that the payment of {amount} for order {reference} is "
                 "disputed; your bank decides disputes. If it was opened by mistake, or if there's something we "
                 "can fix for you, just reply.\n\n{agent}"),
    # The answer to "Was I charged?": the money first (what Stripe took and when, or that nothing
    # was taken), then what it means for the order.
    "was_charged": ("Your payment for order {reference}",
                    "Hello{name},\n\n{money}{now}\n\nYou can follow your order here:\n{status_url}\n\n"
                    "Your reference is {reference}.\n\n{agent}"),
    "not_found": ("Let's find your payment",
                  "Hello{name},\n\nThank you for writing. We couldn't find a payment from {email} yet. So we can "
                  "look it up, could you reply with the last 4 digits of the card you used, the amount, and the "
                  "date of the charge as it shows on your statement? With those we can find it quickly.\n\n{agent}"),
}


# Drafts that answer a customer's question: never offered (nor opened) to someone who never wrote;
# to them the other drafts do not thank them for writing either.
ANSWERS_ONLY = {"two_payments"}
THANKS_FOR_WRITING = "Thank you for writing. "


@dataclass(frozen=True)
class Reply:
    key: str
    subject: str
    body: str
    recommended: bool = False  # the one the diagnosis asks for


def order_replies(order: Order, *, agent_name: str, status_url: str,
                  diagnosis: Diagnosis | None = None, question: str = "", wrote: bool | None = None) -> list[Reply]:
    """The replies that fit this order's state, each only where its facts hold; the one the
    diagnosis names first, or, when the customer asked "Was I charged?" (`question="charged"`),
    the one that answers that with the money first. Every amount is Stripe's; every "we sent" or
    "we refunded" is on the timeline (the outbox, the refunds) or is what the recommended button does.
    `wrote`: whether the customer wrote to us (default: an email of theirs is linked to the order); a
    draft that answers a question ("you paid twice") is offered only to someone who asked."""
    diagnosis = diagnosis or order_diagnosis(order)
    if wrote is None:
        wrote = order.inbound_messages.exists()
    values = {
        "name": f" {order.full_name.split()[0]}" if order.full_name.strip() else "",
        "reference": order.reference, "email": order.email, "plan": order.plan.name, "status_url": status_url,
        "agent": agent_name or "The Backstop team",
    }
    keys = _reply_facts(order, diagnosis, values)
    if not wrote:
        keys = [key for key in keys if key not in ANSWERS_ONLY]
    if diagnosis.reply in keys:
        keys.remove(diagnosis.reply)
        keys.insert(0, diagnosis.reply)
    if question == "charged" and _was_charged_facts(order, diagnosis, values):
        keys.insert(0, "was_charged")
    replies = [Reply(key, REPLIES[key][0].format(**values), REPLIES[key][1].format(**values),
                     recommended=key == diagnosis.reply) for key in keys]
    if not wrote:  # a sentence that would be false: they wrote nothing
        replies = [replace(r, body=r.body.replace(THANKS_FOR_WRITING, "")) for r in replies]
    return replies


def _reply_facts(order: Order, diagnosis: Diagnosis, values: dict) -> list[str]:
    """Which replies this order's facts back; adds the values their sentences need."""
    from billing.selectors import access_until_without, order_access

    received = order.amount_received_cents is not None and order.paid_at is not None
    values.update(amount=order.paid_display, paid=_when(order.paid_at) if order.paid_at else "")
    if diagnosis.reply == "checking" or (diagnosis.action == "recover" and order.state != S.REFUND_PENDING):
        # Charged (or maybe charged) and not finished: what Recover is about to do, and no more.
        return ["offer_refund", "checking"] if received else ["checking"]
    if order.state in (S.PENDING, S.FAILED, S.CANCELED):
        values["what"] = {S.PENDING: "the payment was never completed", S.FAILED: "the payment didn't go through",
                          S.CANCELED: "it was canceled before any payment"}[order.state]
        values["again"] = ("" if order.state == S.CANCELED else
                           f" If you'd still like the {order.plan.name} plan, you can pay from your order "
                           f"page:\n{values['status_url']}")
        return ["not_charged", "not_found"]
    if order.state == S.NEEDS_REVIEW:
        if not received:
            return ["checking"]
        values["deadline"] = (f" Unless we finish it by {_when(order.refund_deadline_at)}, we refund you in full "
                              "automatically." if order.held_since and order.refund_deadline_at else "")
        return ["held"]
    if order.state == S.REFUND_PENDING:
        values["refunding"] = order.refundable_display
        return ["refund_in_progress"]
    keys = []
    access = order_access(order)
    if order.state == S.ACTIVE and access.until:
        confirmation = _confirmation_facts(order)
        keys += [confirmation.reply] + (["active"] if confirmation.reply != "active" else [])
        values.update(
            until=customer_day(access.until),
            confirmation_at=_when(confirmation.sent_at) if confirmation.sent_at else "",
            resent_at=_when(confirmation.resent_at) if confirmation.resent_at else "",
            confirmation=(f" We sent your confirmation to {order.email} on {_when(confirmation.sent_at)}."
                          if confirmation.sent_at else
                          f" Your confirmation is on its way to {order.email}." if confirmation.on_its_way else ""),
            sorry=" Sorry for the wait." if _activation_wait(order) else "",
        )
        others = order_other_payments(order)
        if others:
            everyone = sorted([order, *others], key=lambda o: o.created_at)
            remains = access_until_without(order)
            values.update(
                count={2: "two", 3: "three"}.get(len(everyone), str(len(everyone))),
                payments=_and(f"{o.paid_display} on {_when(o.paid_at)} (order {o.reference})" for o in everyone),
                months=order.plan.duration_months,
                after_refund=(f"your plan would then run until {customer_day(remains)}." if remains
                              else "your plan would then end at once."),
            )
            keys.append("two_payments")
    if order.state == S.DISPUTED:
        keys.append("disputed")
    if order.amount_refunded_cents and received:
        keys.append("refunded")
        values.update(_refund_values(order, access))
    return keys


def _was_charged_facts(order: Order, diagnosis: Diagnosis, values: dict) -> bool:
    """The answer to "Was I charged?", from Stripe's figures on the order: what it took, from which
    card and when, and any refund; or that nothing was taken. False when we cannot yet say (the
    payment is still being checked): the "checking" reply is the honest answer then."""
    from billing.selectors import order_access

    received = order.amount_received_cents is not None and order.paid_at is not None
    if not received:
        if "what" not in values:  # not known to be unpaid (see _reply_facts): still being checked
            return False
        values.update(money=f"No: no money was taken for order {order.reference}.",
                      now=f" {values['what'][0].upper()}{values['what'][1:]}.{values['again']}")
        return True
    card = (f" from your card ({order.card_brand.title() or 'card'} ending {order.card_last4})"
            if order.card_last4 else "")
    money = f"Yes: Stripe took {order.paid_display}{card} on {_when(order.paid_at)}"
    done = [r for r in order.refunds.all() if r.status == "succeeded"]
    if order.amount_refunded_cents:
        money += f"; we refunded {order.refunded_display} of it" + (f" on {_when(done[-1].created_at)}" if done else "")
        money += ". Banks usually take 5–10 days to show a refund on your statement."
    else:
        money += "."
    if order.statement_descriptor:
        money += f" Your statement shows it as {order.statement_descriptor}."
    access = order_access(order)
    if order.state == S.ACTIVE and access.until:
        now = f" Your {order.plan.name} plan is active until {customer_day(access.until)}."
    elif order.state == S.NEEDS_REVIEW:
        now = (" Your account isn't ready yet: someone on our team needs to check your order before it can be "
               "switched on. If you'd rather not wait, reply and we'll refund you in full. You won't be charged twice.")
    elif order.state == S.REFUND_PENDING:
        now = (f" We've asked our payment provider to refund {order.refundable_display}, and it is confirming it "
               "now; we'll email you once it has.")
    elif order.state == S.DISPUTED:
        now = " Your bank has told us this payment is disputed; your bank decides disputes."
    elif order.state == S.REFUNDED:
        now = access_after_refund(order, access)
    else:  # charged, not finished yet: what Recover is about to do
        now = " We're finishing your order now; you won't be charged twice."
    values.update(money=money, now=now)
    return True


def _refund_values(order: Order, access) -> dict:
    card = f" ({order.card_brand.title() or 'card'} ending {order.card_last4})" if order.card_last4 else ""
    done = [r for r in order.refunds.all() if r.status == "succeeded"]
    full = order.amount_refunded_cents >= order.paid_cents
    if access.granted and (access.in_force or not full):
        after = f" Your {order.plan.name} plan stays active until {customer_day(access.until)}." if access.until else ""
    else:
        after = access_after_refund(order, access)
    return {
        "refunded": order.refunded_display, "card": card,
        "refunded_on": f" on {_when(done[-1].created_at)}" if done else "",
        "part_of": "" if full else f" That is part of your {order.paid_display} payment.",
        "access": after,
    }


def _activation_wait(order: Order):
    """How long the customer waited for their account after paying, when it was longer than the
    nets' head start (not activated at checkout); else None."""
    from datetime import timedelta

    activated = order.events.filter(to_state=S.ACTIVE).order_by("created_at").values_list("created_at",
                                                                                          flat=True).first()
    wait = activated - order.paid_at if activated and order.paid_at else None
    return wait if wait and wait > timedelta(minutes=NETS_HEAD_START_MINUTES) else None


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# --- The landing page: one search box, and only what needs a person ------------------------

@dataclass(frozen=True)
class QueueItem:
    kind: str
    title: str
    detail: str
    since: datetime
    money_cents: int = 0
    deadline: datetime | None = None
    url: str = ""
    reply_due: datetime | None = None  # support email: when the first reply is due (SUPPORT_FIRST_RESPONSE)
    breached: bool = False  # ... and it is past that
    claimed: str = ""  # "<name> is on it"

    @property
    def money(self) -> str:
        return format_money(self.money_cents, "usd") if self.money_cents else ""


# Charged orders the sweep has had this long to finish on its own before a person is asked.
NETS_HEAD_START_MINUTES = 5


def needs_attention(*, now: datetime | None = None, limit: int = 100) -> list[QueueItem]:
    """Only what needs a person: money held or at risk first, then the longest waiting."""
    from datetime import timedelta

    from django.db.models import Count, Q

    from billing.models import OutboundEmail
    from billing.selectors import orders_behind_stripe
    from support.models import Alert

    now = now or timezone.now()
    items: list[QueueItem] = []
    seen: set[int] = set()

    def order_url(order_id):
        return f"/admin/billing/order/{order_id}/change/"

    stuck = orders_behind_stripe(charged_before=now - timedelta(minutes=NETS_HEAD_START_MINUTES))
    for order in Order.objects.filter(id__in=[s.order_id for s in stuck]):
        seen.add(order.id)
        money = order_money(order, ask_stripe=False)  # the mirror shows the charge that put it here
        items.append(QueueItem("charged_without_service", f"{order.reference}: {money.label}",
                               f"{order.email} · the nets have not finished it", order.paid_at or order.created_at,
                               order.paid_cents, order.refund_deadline_at, order_url(order.id)))
    attention = Q(state__in=[S.NEEDS_REVIEW, S.DISPUTED]) | Q(held_since__isnull=False) | Q(
        state=S.REFUND_PENDING, state_changed_at__lt=now - timedelta(minutes=10))
    for order in Order.objects.filter(attention).exclude(id__in=seen).exclude(state__in=[S.ACTIVE, S.REFUNDED])[:limit]:
        seen.add(order.id)
        kind = {"disputed": "dispute", "refund_pending": "refund_unconfirmed"}.get(order.state, "held_money")
        title = {"dispute": "disputed by the bank", "refund_unconfirmed": "refund not confirmed by Stripe",
                 "held_money": "money held without service"}[kind]
        items.append(QueueItem(kind, f"{order.reference}: {title}",
                               f"{order.email} · {order.attention_reason or order.get_state_display()}",
                               order.held_since or order.state_changed_at,
                               order.paid_cents - order.amount_refunded_cents, order.refund_deadline_at,
                               order_url(order.id)))
    for alert in Alert.objects.filter(kind=Alert.Kind.UNMATCHED_CHARGE, resolved_at__isnull=True)[:limit]:
        items.append(QueueItem("unmatched_charge", alert.summary, alert.details[:200], alert.created_at,
                               url=f"/admin/support/alert/{alert.id}/change/"))
    trouble = Q(status__in=[OutboundEmail.Status.FAILED, OutboundEmail.Status.UNCERTAIN]) | Q(
        esp_status__in=["bounced", "rejected", "failed", "complained"])
    for email in (OutboundEmail.objects.filter(trouble, kind__in=OutboundEmail.ONCE_PER_ORDER)
                  .select_related("order")[:limit]):
        items.append(QueueItem("email", f"{email.order.reference}: {email.get_kind_display().lower()} "
                               f"{email.esp_status or email.get_status_display().lower()}",
                               f"to {email.recipient} · {email.last_error[:120]}", email.created_at,
                               url=order_url(email.order_id)))
    # Paid twice: two payments within minutes, neither through checkout's renewal offer.
    window = timedelta(minutes=DUPLICATE_PAYMENT_WINDOW_MINUTES)
    unchosen = Order.objects.filter(state__in=[S.PAID, S.ACTIVE], renewal=False,
                                    created_at__gte=now - timedelta(days=30))
    duplicates = unchosen.values("email", "plan_id").annotate(n=Count("id")).filter(n__gt=1)[:limit]
    for dup in duplicates:
        orders = list(unchosen.filter(email=dup["email"], plan_id=dup["plan_id"]).order_by("created_at"))
        close = [b for a, b in pairwise(orders) if b.created_at - a.created_at <= window]
        if not close:
            continue
        items.append(QueueItem("duplicate", f"{dup['email']} paid {len(orders)} times for the same plan within "
                               f"{DUPLICATE_PAYMENT_WINDOW_MINUTES} minutes, not as a renewal",
                               ", ".join(o.reference for o in orders), close[-1].created_at,
                               close[-1].paid_cents, url=order_url(close[-1].id)))
    from support.models import InboundMessage

    for message in InboundMessage.objects.filter(status=InboundMessage.Status.OPEN).order_by("received_at")[:limit]:
        wait = first_response(message, now=now)
        items.append(QueueItem("inbound", f"Email from {message.from_email}: {message.subject or '(no subject)'}",
                               message.done_automatically or message.diagnosis[:160], message.received_at,
                               url=f"/admin/support/inboundmessage/{message.id}/change/",
                               reply_due=wait.due, breached=wait.breached))
    # Customers waiting past the first-response target first, then money, then the longest waiting.
    items = sorted(items, key=lambda item: (not item.breached, -item.money_cents, item.since))[:limit]
    claims = queue_claims(item.url for item in items)
    return [replace(item, claimed=claims[item.url]) if item.url in claims else item for item in items]


MIN_PARTIAL_SEARCH = 3


def charges_by_card_last4(last4s):
    """Mirrored charges paid with a card ending in one of these (the order may not know it yet).
    The expression matches support/migrations/0004's index on it."""
    from django.db.models.fields.json import KT

    return djstripe_models.Charge.objects.alias(
        last4=KT("stripe_data__payment_method_details__card__last4")).filter(last4__in=list(last4s))


# An amount as a bank statement or a customer writes it: "$248.00", "248", "248,00", "1,248.00",
# "1.248,00", "USD 248". The last "." or "," followed by one or two digits is the decimal point;
# any other separator groups thousands, and one kind only.
_AMOUNT_QUERY_RE = re.compile(r"(?P<whole>\d{1,3}(?:(?P<group>[,.])\d{3})(?:(?P=group)\d{3})*|\d{1,9})"
                              r"(?:(?P<point>[.,])(?P<fraction>\d{1,2}))?")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]{3,9})\.?"
_YEAR = r"(?P<year>\d{4})"
# ISO, and the forms with the month's name; never "12/01", which is Dec 1 to some and Jan 12 to others.
_DATE_QUERY_RES = [
    re.compile(rf"{_YEAR}-(?P<month_number>\d{{1,2}})-{_DAY}"),
    re.compile(rf"{_MONTH}\s{{0,3}}{_DAY}(?:,?\s{{1,3}}{_YEAR})?"),
    re.compile(rf"{_DAY}\s{{0,3}}{_MONTH}(?:,?\s{{1,3}}{_YEAR})?"),
]


def parse_amount_cents(text: str) -> int | None:
    """Cents for an amount as printed ("$248.00" → 24800), or None if the text is not one."""
    t = text.strip().upper().removeprefix("USD").removesuffix("USD").strip()
    t = t.removeprefix("$").removesuffix("$").strip()
    match = _AMOUNT_QUERY_RE.fullmatch(t)
    if not match or (match["group"] and match["group"] == match["point"]):
        return None
    whole = int(match["whole"].replace(",", "").replace(".", ""))
    if whole >= 10**9:  # beyond any price, and beyond dj-stripe's amount column (11 digits)
        return None
    return whole * 100 + int((match["fraction"] or "0").ljust(2, "0"))


def parse_console_date(text: str, *, today: date | None = None) -> date | None:
    """The day a typed date means ("2026-12-01", "Dec 1", "1 December 2026"), or None. A date
    without a year is the most recent one that is not in the future, in SUPPORT_TIME_ZONE."""
    t = text.strip().lower()
    for pattern in _DATE_QUERY_RES:
        match = pattern.fullmatch(t)
        if match:
            break
    else:
        return None
    groups = match.groupdict()
    if groups.get("month_number"):
        month = int(groups["month_number"])
    else:
        month = next((i + 1 for i, name in enumerate(_MONTHS) if name.startswith(groups["month"])), 0)
    day = int(groups["day"])
    if not 1 <= month <= 12:
        return None
    if groups.get("year"):
        try:
            return date(int(groups["year"]), month, day)
        except ValueError:
            return None
    today = today or console_today()
    for year in range(today.year, today.year - 8, -1):  # eight years always hold a February 29
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


_SLASHED_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?")


def console_date_hint(text: str, *, today: date | None = None) -> str | None:
    """What to say to a search for a date written with slashes, which the search does not read
    ("12/05" is Dec 5 to some and May 12 to others): each day it can be, and how to type it."""
    match = _SLASHED_DATE_RE.fullmatch(text.strip())
    if not match:
        return None
    first, second, year = int(match[1]), int(match[2]), match[3]
    readings = []
    for month, day in dict.fromkeys([(first, second), (second, first)]):  # month first, then day first
        name = f"{_MONTHS[month - 1][:3].title()} {day}" if 1 <= month <= 12 else ""
        if year:
            name += f", {int(year) + (2000 if len(year) == 2 else 0)}"
        found = parse_console_date(name, today=today) if name else None
        if found is not None:
            readings.append((name, found.isoformat()))
    if not readings:
        return None
    typed = text.strip()
    (name, iso), *other = readings
    if not other:
        return f"{typed} is {name} written with slashes: type {iso} or {name}."
    other_name, other_iso = other[0]
    return (f"{typed} could be {name} or {other_name}: type {iso} or {name} "
            f"(for {other_name}: {other_iso} or {other_name}).")


def _amount_and_day(q: str) -> tuple[int | None, date | None]:
    """An amount, a day, or both ("248 Dec 1", "Dec 1 $248.00"); (None, None) if neither."""
    day = parse_console_date(q)
    if day is not None:
        return None, day
    amount = parse_amount_cents(q)
    if amount is not None:
        return amount, None
    words = q.split()
    if len(words) >= 2:
        for amount_text, rest in ((words[0], words[1:]), (words[-1], words[:-1])):
            amount, day = parse_amount_cents(amount_text), parse_console_date(" ".join(rest))
            if amount is not None and day is not None:
                return amount, day
    return None, None


def _order_result(order: Order, detail: str = "", *, payment_intents: dict | None = None,
                  stripe_reads: list | None = None) -> dict:
    """One order in the search results, its money labelled as the case page labels it (order_money).
    An open order's payment is read from Stripe while `stripe_reads` (a one-item budget) lasts."""
    payment_intents = payment_intents if payment_intents is not None else {}
    pi = payment_intents.get(order.stripe_payment_intent_id)
    ask = pi is None and order.state in OPEN_STATES and bool(order.stripe_payment_intent_id) and _recent(order) and (
        stripe_reads is None or stripe_reads[0] > 0)
    if ask and stripe_reads is not None:
        stripe_reads[0] -= 1
    money = order_money(order, ask_stripe=ask, payment_intent=pi)
    if money.charged_at == UNKNOWN and stripe_reads is not None:
        stripe_reads[0] = 0  # Stripe is not answering: the rest of this search does not wait on it
    when = f"paid {console_time(order.paid_at)}" if order.paid_at else f"ordered {console_time(order.created_at)}"
    return {"kind": "order", "title": f"{order.reference} · {money.label}",
            "detail": f"{order.email} · {detail or when}"
            + (f" · card ending {order.card_last4}" if order.card_last4 and not detail else ""),
            "url": f"/admin/billing/order/{order.id}/change/"}


# A search reads Stripe for at most this many open orders (one call each, newest first); the others
# say they were not checked. Open orders are few: an unfinished attempt is canceled within the hour.
SEARCH_STRIPE_READS = 10
# The card of a payment nothing has told us about yet (no webhook, no return, no sweep): a last-4
# search asks Stripe about the open orders this recent.
OPEN_PAYMENT_LOOKBACK_DAYS = 2


def _open_payments_by_card(last4: str, payment_intents: dict) -> list[int]:
    """Ids of recent open orders whose PaymentIntent's card ends in `last4`, read from Stripe (the
    order and the mirror may not know the card yet). Stores what it read in `payment_intents`."""
    from datetime import timedelta

    since = timezone.now() - timedelta(days=OPEN_PAYMENT_LOOKBACK_DAYS)
    found = []
    for order in (Order.objects.filter(state__in=OPEN_STATES, stripe_payment_intent_id__isnull=False,
                                       card_last4="", created_at__gte=since)
                  .order_by("-created_at")[:SEARCH_STRIPE_READS]):
        try:
            pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
        except stripe_api.StripeError:
            break  # Stripe is not answering: one wait per search, not ten
        payment_intents[order.stripe_payment_intent_id] = pi
        charge = pi.get("latest_charge")
        card = ((charge.get("payment_method_details") or {}).get("card") or {}) if charge and not isinstance(
            charge, str) else {}
        if card.get("last4") == last4:
            found.append(order.id)
    return found


def console_search(query: str, *, limit: int = 50) -> list[dict]:
    """One box: email (part, any case), name, reference or statement code, card last 4 (also from
    a payment whose order is not finished), an amount as printed, a day, an amount on a day, or a
    Stripe id. Orders and the mirror, newest first."""
    from decimal import Decimal

    from django.db.models import Q

    q = query.strip()
    if not q:
        return []
    orders = Order.objects.none()
    charges = djstripe_models.Charge.objects.none()
    payment_intents: dict = {}  # what this search read from Stripe, by PaymentIntent id
    stripe_reads = [SEARCH_STRIPE_READS]
    compact = re.sub(r"[^0-9A-Za-z]", "", q).upper()
    if re.fullmatch(r"(pi|ch|cus|re|dp|du|py)_[0-9A-Za-z]+", q):
        from billing.models import StripeCustomer

        # A cus_ is a person (decision 0015): every order of its address, also those never paid.
        person = StripeCustomer.objects.filter(stripe_customer_id=q).values("email")
        orders = Order.objects.filter(Q(stripe_payment_intent_id=q) | Q(stripe_charge_id=q) | Q(stripe_customer_id=q)
                                      | Q(email__in=person))
        charges = djstripe_models.Charge.objects.filter(Q(id=q) | Q(payment_intent_id=q) | Q(customer_id=q))
        if q.startswith("re_"):
            charges = djstripe_models.Charge.objects.filter(refunds__id=q)
        if q.startswith(("dp_", "du_")):
            charges = djstripe_models.Charge.objects.filter(disputes__id=q)
    elif re.fullmatch(r"\d{4}", q):
        from_stripe = _open_payments_by_card(q, payment_intents)
        orders = Order.objects.filter(Q(card_last4=q) | Q(id__in=from_stripe))
        charges = charges_by_card_last4([q])
    elif (found := _amount_and_day(q)) != (None, None):
        # Checked before references: "Dec 1 2026" and "2026-12-01" also have 8 letters and digits.
        # Each filter matches an index of support/migrations/0004 or 0006.
        cents, day = found
        orders, charges = Order.objects.all(), djstripe_models.Charge.objects.all()
        if cents is not None:
            orders = orders.filter(Q(amount_cents=cents) | Q(amount_received_cents=cents))
            # dj-stripe keeps the charge's amount in major units (dollars) in a column of its own.
            charges = charges.filter(amount=Decimal(cents) / 100)
        if day is not None:
            start, end = console_day_bounds(day)
            orders = orders.filter(Q(created_at__gte=start, created_at__lt=end)
                                   | Q(paid_at__gte=start, paid_at__lt=end))
            charges = charges.filter(created__gte=start, created__lt=end)
    elif re.fullmatch(r"(BK|BACKSTOP)?[0-9A-HJKMNP-TV-Z]{8}", compact) and not q.isdigit() and "@" not in q:
        # A reference, or the code on the bank statement ("BACKSTOP* 7F3K9QX2"); a word that only
        # looks like one is still searched as a name.
        body = compact.removeprefix("BACKSTOP").removeprefix("BK")
        orders = Order.objects.filter(Q(reference=f"BK-{body[:4]}-{body[4:]}") | Q(full_name__icontains=q))
    elif len(q) < MIN_PARTIAL_SEARCH:
        # One or two letters match too little to use an index and too much to read; ask for more.
        return []
    else:
        orders = Order.objects.filter(Q(email__icontains=q) | Q(full_name__icontains=q))
    results = []
    found_pis = set()
    for order in orders.select_related("plan").order_by("-created_at")[:limit]:
        if order.stripe_payment_intent_id:
            found_pis.add(order.stripe_payment_intent_id)
        results.append(_order_result(order, payment_intents=payment_intents, stripe_reads=stripe_reads))
    # Most charges an amount or a day finds belong to orders already listed: only the others are
    # read whole (a mirrored charge's stripe_data is a few kB), and their orders in one query.
    unseen = [pk for pk, pi in charges.order_by("-created").values_list("pk", "payment_intent_id")[:limit]
              if pi not in found_pis]
    charges = list(djstripe_models.Charge.objects.filter(pk__in=unseen).order_by("-created")) if unseen else []
    by_pi = {o.stripe_payment_intent_id: o for o in Order.objects.select_related("plan").order_by().filter(
        stripe_payment_intent_id__in=[c.payment_intent_id for c in charges if c.payment_intent_id])}
    for charge in charges:
        if charge.payment_intent_id in found_pis:
            continue
        order = by_pi.get(charge.payment_intent_id)
        if order is not None:
            found_pis.add(order.stripe_payment_intent_id)
            results.append(_order_result(order, detail="found by its Stripe charge", payment_intents=payment_intents,
                                         stripe_reads=stripe_reads))
            continue
        data = charge.stripe_data or {}
        money = format_money(data.get("amount", 0), data.get("currency", "usd"))
        results.append({"kind": "charge", "title": f"Stripe charge {charge.id} · {money} · {charge.status} · no order",
                        "detail": f"{(data.get('billing_details') or {}).get('email') or ''} "
                        f"{(charge.metadata or {}).get('reference', '')} · {console_time(charge.created)}",
                        "url": stripe_dashboard_url(charge.id)})
    return results[:limit]


# --- Inbound support email: which orders is the customer writing about? ------------------------

# Only this much of a body is read, and every pattern is linear: each token is anchored and every
# repeat has a small bound (issue 15: `[*xX]{2,}\D{0,12}` took 66 s on 20,000 characters).
INBOUND_SCAN_LIMIT = 20_000
_REFERENCE_RE = re.compile(r"\bBK-?([0-9A-HJKMNP-TV-Z]{4})-?([0-9A-HJKMNP-TV-Z]{4})\b")
_STATEMENT_RE = re.compile(r"\bBACKSTOP\*?\s{0,3}([0-9A-HJKMNP-TV-Z]{8})\b")
_LAST4_RE = re.compile(r"(?:\bending(?:\s{1,3}in)?|\bends\s{1,3}(?:in|with)|\blast\s{0,3}(?:4|four)(?:\s{1,3}digits)?"
                       r"(?:\s{1,3}(?:are|is))?|(?<![*x•])[*x•]{2,16})[^\d*x•]{0,12}(\d{4})\b", re.IGNORECASE)
_AMOUNT_RE = re.compile(r"(?:\$|\bUSD\s?)\s?(\d{1,5}(?:[.,]\d{2})?)")
# A PaymentIntent or Charge id as Stripe prints it (a receipt, the customer's bank, Stripe's email).
_STRIPE_ID_RE = re.compile(r"\b((?:pi|ch)_[A-Za-z0-9]{8,64})\b")
# "Was I charged?", "Have I been charged twice", "Did you charge my card?", "Am I being billed?"
_ASKS_IF_CHARGED_RE = re.compile(
    r"\b(?:was|were|am|have|has|did|is)\s{1,3}(?:i|we|you|my\s{1,3}card|it)\s{1,3}(?:been\s{1,3}|being\s{1,3})?"
    r"(?:charged?|billed?|bill)\b|\bcharged\s{0,3}\?", re.IGNORECASE)


@dataclass(frozen=True)
class InboundTokens:
    references: frozenset[str]
    last4s: frozenset[str]
    amounts_cents: frozenset[int]
    stripe_ids: frozenset[str] = frozenset()
    asks_if_charged: bool = False  # the draft then answers that first (order_replies' question="charged")


def inbound_tokens(*, subject: str, text: str) -> InboundTokens:
    """What a support email quotes that can point to an order: the subject, and only the first
    INBOUND_SCAN_LIMIT characters of the body."""
    text = f"{subject[:300]}\n{text[:INBOUND_SCAN_LIMIT]}"
    upper = text.upper()
    references = {a + b for a, b in _REFERENCE_RE.findall(upper)} | set(_STATEMENT_RE.findall(upper))
    return InboundTokens(
        references=frozenset(f"BK-{r[:4]}-{r[4:]}" for r in references),
        last4s=frozenset(_LAST4_RE.findall(text)),
        amounts_cents=frozenset(round(float(a.replace(",", ".")) * 100) for a in _AMOUNT_RE.findall(text)),
        stripe_ids=frozenset(_STRIPE_ID_RE.findall(text)),
        asks_if_charged=bool(_ASKS_IF_CHARGED_RE.search(text)),
    )


def _quoted_stripe_ids(tokens: InboundTokens):
    """Orders a quoted PaymentIntent or Charge id names: by the order's own ids, or by the mirrored
    charge's PaymentIntent (the order may not know its charge yet)."""
    from django.db.models import Q

    pis = [i for i in tokens.stripe_ids if i.startswith("pi_")]
    charges = [i for i in tokens.stripe_ids if i.startswith("ch_")]
    mirrored = djstripe_models.Charge.objects.filter(id__in=charges).values("payment_intent_id")
    return (Q(stripe_payment_intent_id__in=pis) | Q(stripe_charge_id__in=charges)
            | Q(stripe_payment_intent_id__in=mirrored))


def orders_mentioned(*, from_email: str, subject: str, text: str, limit: int = 10) -> list[Order]:
    """Candidate orders for a support email: the sender's own first, then any the text points to
    by strong evidence, newest first: its reference or statement code, or a Stripe PaymentIntent or
    Charge id. A card's last 4 and an amount are shared by thousands of strangers: they never link
    an order on their own, only pick among the sender's own (which their address links already).
    Candidates are for support's eyes: whether the sender may hear about one is `inbound_sender_owns`."""
    from django.db.models import Case, Q, Value, When

    from accounts.models import normalize_email

    tokens = inbound_tokens(subject=subject, text=text)
    own = Q(email=normalize_email(from_email))
    match = own | Q(reference__in=tokens.references)
    if tokens.stripe_ids:
        match |= _quoted_stripe_ids(tokens)
    orders = (Order.objects.filter(match).select_related("plan")
              .annotate(senders=Case(When(own, then=Value(0)), default=Value(1)))
              .order_by("senders", "-created_at"))
    return list(orders[:limit])


def inbound_sender_owns(order: Order, *, from_email: str, sender_authenticated: bool) -> bool:
    """May a reply to this sender carry this order's details? Only when the sender is the order's
    own address and the provider's envelope checks back the From (see support/inbound.py)."""
    from accounts.models import normalize_email

    return sender_authenticated and bool(from_email) and normalize_email(order.email) == normalize_email(from_email)


def inbound_order_links(message) -> list[dict]:
    """The orders linked to a support email, each with whose it is and why it is linked, for the
    case page: the sender's own (their address), or someone else's that the email quotes."""
    from accounts.models import normalize_email

    tokens = inbound_tokens(subject=message.subject, text=message.body)
    sender = normalize_email(message.from_email) if message.from_email else ""
    links = []
    for order in message.orders.select_related("plan").order_by("-created_at"):
        senders = bool(sender) and normalize_email(order.email) == sender
        quoted = [words for words, hit in (
            ("its reference", order.reference in tokens.references),
            ("its Stripe payment id", order.stripe_payment_intent_id in tokens.stripe_ids),
            ("its Stripe charge id", order.stripe_charge_id in tokens.stripe_ids)) if hit]
        if not quoted and any(i.startswith("ch_") for i in tokens.stripe_ids):
            quoted = ["its Stripe charge id"]  # matched through the mirrored charge's PaymentIntent
        if senders:
            why = "The sender's order (their address" + (f"; the email also quotes {' and '.join(quoted)})"
                                                          if quoted else ")")
            if not message.sender_authenticated:
                why += "; the provider could not confirm the From, so the draft shares nothing of it"
        elif quoted:
            why = f"Not the sender's: the email quotes {' and '.join(quoted)}; it is {order.email}'s"
        else:  # a case matched before inbound mail needed strong evidence (a card's last 4 and an amount)
            why = f"Not the sender's, and nothing in the email proves it is theirs; it is {order.email}'s"
        links.append({"order": order, "senders": senders, "why": why})
    links.sort(key=lambda link: not link["senders"])
    return links


# The reply to a sender who is not (or cannot be shown to be) the order's address: our words only,
# nothing from any candidate order.
UNVERIFIED_SENDER_REPLY = (
    "About your order",
    "Hello,\n\nThank you for writing. To keep orders private, we can only discuss an order with the email "
    "address it was paid with. Please write to us again from that address, or use Find my order:\n"
    "{lookup_url}\nIt emails a link to your order's page to the address on the order.\n\n{agent}",
)


# --- The team's feed: the console's recent actions, each said of the person who did it ------------

# Claims logged before the feed spoke in the third person ("You are on this case", as the person
# who pressed was told), read as they should be by everyone else.
_FEED_SECOND_PERSON = [
    (re.compile(r"You are on this case \(taken from (.{1,200}?)\)\.?"), r"took the case over from \1"),
    (re.compile(r"You are on this case\.?"), "took the case"),
    (re.compile(r"You are no longer on this case\.?"), "left the case"),
]
_FEED_VERBS = ("took the case", "left the case")


def team_feed(*, limit: int = 15) -> list[dict]:
    """The whole team's recent console actions (the admin log the console's buttons write), newest
    first, each as a line about the person: "Ana Ruiz took the case", "Sam Lee · Marked answered"."""
    from django.contrib.admin.models import LogEntry

    lines = []
    for entry in LogEntry.objects.select_related("user", "content_type").order_by("-action_time")[:limit]:
        message = entry.get_change_message()
        for pattern, third_person in _FEED_SECOND_PERSON:
            if pattern.fullmatch(message):
                message = pattern.sub(third_person, message)
                break
        name = _person(entry.user)
        text = f"{name} {message}" if message.startswith(_FEED_VERBS) else f"{name} · {message}"
        lines.append({"entry": entry, "text": text})
    return lines


# --- Two people, one inbox: what a colleague did, the case's version, the wait ------------------

# A colleague who viewed, acted on or replied to a case this recently is named on it.
COLLEAGUE_WINDOW_MINUTES = 10
# What a console action's receipt says a person did.
ACTION_WORDS = {"refund": "refunded money", "accept": "accepted what Stripe took", "extend": "extended access",
                "note": "added a note",
                "signin_link": "sent a sign-in link", "reply": "sent a reply"}


def _person(user) -> str:
    return user.get_full_name() if user is not None else "someone"


def _actor_name(actor: str) -> str:
    """`support:<email>` as the person's name; any other actor (webhook, sweep) as it is."""
    from django.contrib.auth import get_user_model

    if not actor.startswith("support:"):
        return f"the {actor}" if actor in ("webhook", "sweep", "checkout") else actor
    email = actor.removeprefix("support:")
    user = get_user_model().objects.filter(email=email).first()
    return _person(user) if user is not None else email


def _parse_version(seen: str) -> tuple[int, int] | None:
    first, _, second = (seen or "").partition(".")
    return (int(first), int(second)) if first.isdigit() and second.isdigit() else None


def _order_changes_qs(order_id: int):
    from django.db.models import Q

    from billing.models import OrderEvent
    from support.models import ActionReceipt

    # What a person acting on the case must have seen: state changes and what support did. The
    # outbox's own "Email sent" lines and the like do not make a page out of date.
    events = OrderEvent.objects.filter(Q(order_id=order_id) & (~Q(to_state="") | Q(actor__startswith="support:")))
    return events, ActionReceipt.objects.filter(order_id=order_id)


def order_case_version(order_id: int) -> str:
    """What an order's case page was showing, carried by its forms: "<last event>.<last receipt>"."""
    from django.db.models import Max

    events, receipts = _order_changes_qs(order_id)
    return (f"{events.aggregate(m=Max('id'))['m'] or 0}."
            f"{receipts.aggregate(m=Max('id'))['m'] or 0}")


def order_case_changes(order_id: int, *, seen: str, user, except_key=None) -> list[str]:
    """What changed on the case since the page showing `seen` was loaded, newest first, in words."""
    version = _parse_version(seen)
    if version is None:
        return ["the page was loaded by an older console (reload it)"]
    events, receipts = _order_changes_qs(order_id)
    changes, people = [], set()
    # A console button's receipt says best what a colleague did; other events (the webhook, the
    # sweep, a Recover) by what they recorded.
    for receipt in receipts.filter(id__gt=version[1]).exclude(key=except_key).select_related("user").order_by("-id"):
        people.add(f"support:{receipt.user.email}")
        who = "you (on another page)" if receipt.user_id == user.id else _person(receipt.user)
        changes.append(f"{who} {ACTION_WORDS.get(receipt.action, 'resent an email')} at {_when(receipt.created_at)}")
    for event in events.filter(id__gt=version[0]).exclude(actor__in=people).order_by("-id")[:5]:
        who = "you (on another page)" if event.actor == f"support:{user.email}" else _actor_name(event.actor)
        changes.append(f"{who}: {event.reason[:160]} at {_when(event.created_at)}")
    return changes


def inbound_case_version(message) -> str:
    """What a support email's page was showing: "<last reply>.<answered or not>"."""
    last = message.replies.order_by("-id").values_list("id", flat=True).first() or 0
    return f"{last}.{int(message.status == message.Status.ANSWERED)}"


def inbound_case_changes(message, *, seen: str, user) -> list[str]:
    """A second reply must not go out because two people answered the same email at once."""
    version = _parse_version(seen)
    if version is None:
        return ["the page was loaded by an older console (reload it)"]
    changes = []
    for reply in message.replies.filter(id__gt=version[0]).select_related("user").order_by("-id"):
        who = "you (on another page)" if reply.user_id == user.id else _person(reply.user)
        changes.append(f"{who} sent a reply at {_when(reply.created_at)}")
    if not changes and not version[1] and message.status == message.Status.ANSWERED:
        who = "you (on another page)" if message.answered_by_id == user.id else _person(message.answered_by)
        changes.append(f"{who} marked it answered at {_when(message.answered_at)}")
    return changes


def case_colleagues(*, user, order=None, message=None, now: datetime | None = None) -> list[str]:
    """Who else viewed, acted on or replied to this case in the last minutes: said before a
    second reply or refund goes out."""
    from datetime import timedelta

    from django.utils.timesince import timesince

    from support.models import CaseView

    now = now or timezone.now()
    since = now - timedelta(minutes=COLLEAGUE_WINDOW_MINUTES)

    def ago(moment):
        return "just now" if now - moment < timedelta(minutes=1) else f"{timesince(moment, now)} ago"

    case = {"order": order} if order is not None else {"message": message}
    lines = []
    if order is not None:
        for event in (order.events.filter(actor__startswith="support:", created_at__gte=since)
                      .exclude(actor=f"support:{user.email}").order_by("-id")[:5]):
            lines.append(f"{_actor_name(event.actor)}: {event.reason[:160]} ({ago(event.created_at)})")
        for note in order.notes.filter(created_at__gte=since).exclude(author=user).select_related("author")[:3]:
            lines.append(f"{_person(note.author)} added a note ({ago(note.created_at)})")
    else:
        for reply in message.replies.filter(created_at__gte=since).exclude(user=user).select_related("user"):
            lines.append(f"{_person(reply.user)} sent a reply ({ago(reply.created_at)})")
        if message.answered_by_id not in (None, user.id) and message.answered_at and message.answered_at >= since:
            lines.append(f"{_person(message.answered_by)} marked it answered ({ago(message.answered_at)})")
    for view in (CaseView.objects.filter(**case, viewed_at__gte=since).exclude(user=user)
                 .select_related("user").order_by("-viewed_at")[:5]):
        lines.append(f"{_person(view.user)} has it open or had it open ({ago(view.viewed_at)})")
    return lines


@dataclass(frozen=True)
class FirstResponse:
    due: datetime
    breached: bool  # the first reply came, or is still coming, after `due`


def first_response(message, *, now: datetime | None = None) -> FirstResponse:
    """When the customer's first reply is due (SUPPORT_FIRST_RESPONSE after they wrote), and
    whether it was (or still is) late."""
    due = message.received_at + settings.SUPPORT_FIRST_RESPONSE
    return FirstResponse(due=due, breached=(message.answered_at or now or timezone.now()) > due)


_CASE_URL_RE = re.compile(r"^/admin/(?:billing/order|support/(inboundmessage))/(\d+)/change/$")


def queue_claims(urls) -> dict[str, str]:
    """"<name> is on it" for the queue's cases, keyed by their console URL (how it names them)."""
    from django.db.models import Q

    from support.models import CaseClaim

    orders, messages = set(), set()
    for url in urls:
        found = _CASE_URL_RE.match(url or "")
        if found:
            (messages if found.group(1) else orders).add(int(found.group(2)))
    claims = {}
    for claim in CaseClaim.objects.filter(Q(order_id__in=orders) | Q(message_id__in=messages)).select_related("user"):
        url = (f"/admin/billing/order/{claim.order_id}/change/" if claim.order_id
               else f"/admin/support/inboundmessage/{claim.message_id}/change/")
        claims[url] = f"{_person(claim.user)} is on it"
    return claims
