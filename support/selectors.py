"""Support-console reads: an order as a case (diagnosis, timeline, replies). No writes here."""

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from django.conf import settings
from django.utils import timezone
from djstripe import models as djstripe_models

from billing import stripe_api
from billing.models import Order, OrderState
from billing.money import format_money
from billing.selectors import access_after_refund, customer_day
from support.timefmt import console_date, console_day_bounds, console_time, console_today

S = OrderState


@dataclass(frozen=True)
class Diagnosis:
    summary: str  # what happened, in plain words
    action: str  # recover | refund | reply_not_charged | resend | none | stripe_dashboard
    action_label: str
    reply: str = ""  # the key of the prefilled reply that fits (see order_replies)


def _when(moment: datetime | None) -> str:
    return console_time(moment) if moment else "an unknown time"


def order_diagnosis(order: Order, *, now: datetime | None = None) -> Diagnosis:
    """What happened to this order and what a person should do about it, each from a fact: the
    order's state, Stripe's figures, its timeline, the customer's other payments, the sweep's health.
    `reply` names the prefilled reply that fits (order_replies offers it first)."""

    now = now or timezone.now()
    # What Stripe took once it took anything; where it differs from the order, support sees both.
    amount = order.paid_display if order.amount_received_cents is not None else order.amount_display
    if order.amounts_differ:
        amount += f" (the order asked {order.amount_display})"
    charged_at = order.paid_at or _charged_at(order)
    if charged_at == UNKNOWN:
        return Diagnosis("Stripe could not be reached to check whether this payment went through, and our "
                         "records have no charge for it yet. Press Recover to ask Stripe again; never tell the "
                         "customer they were not charged until it answers.", "recover", "Check with Stripe",
                         "checking")
    # Only where a sentence leans on the sweep: it finishes charged orders, retries refunds, refunds held money.
    sweep = sweep_notice(now=now) if order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID, S.NEEDS_REVIEW,
                                                     S.REFUND_PENDING) else None
    if order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID) and charged_at is not None:
        if sweep is None:
            finishing = (f"The sweep finishes such orders every minute, from "
                         f"{_when(max(charged_at + settings.RECONCILE_GRACE, now))}.")
        else:
            finishing = f"{sweep.title}, so nothing will finish it on its own: press Recover now."
        return Diagnosis(
            f"Charged {amount} at {_when(charged_at)}; the order never activated because nothing finished it "
            f"after the payment (the server stopped, or the webhook was lost). {finishing}", "recover",
            "Recover now", "offer_refund" if order.amount_received_cents is not None else "checking")
    if order.state == S.PENDING and order.stripe_payment_intent_id:
        return Diagnosis(f"No payment taken: the customer reached the payment step on {_when(order.created_at)} "
                         "but Stripe has no completed payment. Nothing is owed either way.",
                         "reply_not_charged", "Reply: not charged", "not_charged")
    if order.state == S.PENDING:
        return Diagnosis("No payment taken: the customer never reached the payment step. The order is "
                         "canceled automatically after a day.", "reply_not_charged", "Reply: not charged",
                         "not_charged")
    if order.state == S.FAILED:
        return Diagnosis(f"The payment did not go through ({order.attention_reason or 'declined'}); no money "
                         "was taken. The customer can try again from their status page.",
                         "reply_not_charged", "Reply: not charged", "not_charged")
    if order.state == S.NEEDS_REVIEW:
        held = ""
        if order.held_since:
            held = (f" Money held since {_when(order.held_since)}; refunded automatically at "
                    f"{_when(order.refund_deadline_at)} unless finished first.")
            if sweep is not None and order.refund_deadline_at:
                held += f" {sweep.title}, and it is what makes that refund: watch the deadline."
        why = order.attention_reason or "see the timeline"
        return Diagnosis(f"Charged {amount}, but it cannot activate on its own: {why}.{held} "
                         "Fix the cause and Recover, or Refund.", "refund", "Refund",
                         "held" if order.amount_received_cents is not None else "checking")
    if order.state == S.REFUND_PENDING:
        follow_up = ("the sweep asks again every minute." if sweep is None
                     else f"{sweep.title}, so nothing asks again on its own: press Check with Stripe.")
        return Diagnosis(f"A refund was requested at {_when(order.state_changed_at)} and Stripe has not confirmed "
                         f"it yet; {follow_up}", "recover", "Check with Stripe", "refund_in_progress")
    if order.state == S.REFUNDED:
        full = "in full " if order.amount_refunded_cents >= order.paid_cents else ""
        return Diagnosis(f"Refunded {full}({order.refunded_display} of {order.paid_display}) on "
                         f"{_when(order.state_changed_at)}. {order.refund_reason}".strip(), "none", "", "refunded")
    if order.state == S.DISPUTED:
        return Diagnosis(f"The customer's bank disputed the {amount} payment on {_when(order.state_changed_at)}. "
                         "Answer the dispute in Stripe's dashboard; access carries on meanwhile.",
                         "stripe_dashboard", "Open in Stripe", "disputed")
    if order.state == S.CANCELED:
        return Diagnosis("Canceled before any payment; nothing was charged.", "none", "", "not_charged")
    return _active_diagnosis(order, amount)


def _active_diagnosis(order: Order, amount: str) -> Diagnosis:
    from billing.selectors import order_access

    access = order_access(order)
    until = f"; access until {console_date(access.until)}" if access.until else ""
    refunded = f" {order.refunded_display} refunded." if order.amount_refunded_cents else ""
    paid = f"Paid {amount} on {_when(order.paid_at)} and active{until}.{refunded}"
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
    return Diagnosis(f"{paid} {confirmation.line} Nothing is wrong.".replace("  ", " "), "resend",
                     "Resend confirmation", confirmation.reply)


# Paid twice for the same plan within this long: what the queue lists as "duplicate" (needs_attention).
DUPLICATE_PAYMENT_WINDOW_DAYS = 30


def order_other_payments(order: Order) -> list[Order]:
    """The customer's other paid orders for the same plan within DUPLICATE_PAYMENT_WINDOW_DAYS of this
    one, oldest first. Since decision 0011 a second paid year stacks after the first: a real purchase,
    and still one a person should see, since customers often did not mean it."""
    from datetime import timedelta

    if order.state not in (S.PAID, S.ACTIVE):
        return []
    window = timedelta(days=DUPLICATE_PAYMENT_WINDOW_DAYS)
    return list(Order.objects.filter(email=order.email, plan_id=order.plan_id, state__in=[S.PAID, S.ACTIVE],
                                     created_at__gte=order.created_at - window,
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
    todo = ("Fix that cause (in Stripe or with the customer), then press Recover again; or refund the customer."
            if order.amount_received_cents is not None
            else "Check the payment in Stripe's dashboard, then press Recover again.")
    return False, f"{order.reference} still needs review. Recover cannot finish it: {why}.{held} {todo}"


UNKNOWN = "unknown"


def _charged_at(order: Order) -> datetime | str | None:
    """When Stripe took the money for an order we have not finished: the mirror, else Stripe.

    A case page must not say "no payment" because a webhook was lost; for an open order with a
    PaymentIntent it asks Stripe (a read; Recover is what acts on it).
    """
    if not order.stripe_payment_intent_id or order.state not in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID):
        return None
    charge = (djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id,
                                                    status="succeeded").order_by("-created").first())
    if charge is not None:
        return charge.created
    try:
        pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
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
    "not_found": ("Let's find your payment",
                  "Hello{name},\n\nThank you for writing. We couldn't find a payment from {email} yet. So we can "
                  "look it up, could you reply with the last 4 digits of the card you used, the amount, and the "
                  "date of the charge as it shows on your statement? With those we can find it quickly.\n\n{agent}"),
}


@dataclass(frozen=True)
class Reply:
    key: str
    subject: str
    body: str
    recommended: bool = False  # the one the diagnosis asks for


def order_replies(order: Order, *, agent_name: str, status_url: str,
                  diagnosis: Diagnosis | None = None) -> list[Reply]:
    """The replies that fit this order's state, each only where its facts hold; the one the
    diagnosis names first. Every amount is Stripe's; every "we sent" or "we refunded" is on the
    timeline (the outbox, the refunds) or is what the recommended button does."""
    diagnosis = diagnosis or order_diagnosis(order)
    values = {
        "name": f" {order.full_name.split()[0]}" if order.full_name.strip() else "",
        "reference": order.reference, "email": order.email, "plan": order.plan.name, "status_url": status_url,
        "agent": agent_name or "The Backstop team",
    }
    keys = _reply_facts(order, diagnosis, values)
    if diagnosis.reply in keys:
        keys.remove(diagnosis.reply)
        keys.insert(0, diagnosis.reply)
    return [Reply(key, REPLIES[key][0].format(**values), REPLIES[key][1].format(**values),
                  recommended=key == diagnosis.reply) for key in keys]


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
        items.append(QueueItem("charged_without_service", f"{order.reference}: charged, not active",
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
    duplicates = (Order.objects.filter(state__in=[S.PAID, S.ACTIVE], created_at__gte=now - timedelta(days=30))
                  .values("email", "plan_id").annotate(n=Count("id")).filter(n__gt=1)[:limit])
    for dup in duplicates:
        orders = list(Order.objects.filter(email=dup["email"], plan_id=dup["plan_id"], state__in=[S.PAID, S.ACTIVE])
                      .order_by("created_at"))
        items.append(QueueItem("duplicate", f"{dup['email']} paid {len(orders)} times for the same plan",
                               ", ".join(o.reference for o in orders), orders[-1].created_at,
                               orders[-1].paid_cents, url=order_url(orders[-1].id)))
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


def _order_result(order: Order, detail: str = "") -> dict:
    amount = order.paid_display if order.amount_received_cents is not None else order.amount_display
    if order.amounts_differ:
        amount += f" (asked {order.amount_display})"
    when = f"paid {console_time(order.paid_at)}" if order.paid_at else f"ordered {console_time(order.created_at)}"
    return {"kind": "order", "title": f"{order.reference} · {amount} · {order.get_state_display()}",
            "detail": f"{order.email} · {detail or when}"
            + (f" · card ending {order.card_last4}" if order.card_last4 and not detail else ""),
            "url": f"/admin/billing/order/{order.id}/change/"}


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
    compact = re.sub(r"[^0-9A-Za-z]", "", q).upper()
    if re.fullmatch(r"(pi|ch|cus|re|dp|du|py)_[0-9A-Za-z]+", q):
        orders = Order.objects.filter(Q(stripe_payment_intent_id=q) | Q(stripe_charge_id=q) | Q(stripe_customer_id=q))
        charges = djstripe_models.Charge.objects.filter(Q(id=q) | Q(payment_intent_id=q) | Q(customer_id=q))
        if q.startswith("re_"):
            charges = djstripe_models.Charge.objects.filter(refunds__id=q)
        if q.startswith(("dp_", "du_")):
            charges = djstripe_models.Charge.objects.filter(disputes__id=q)
    elif re.fullmatch(r"\d{4}", q):
        orders = Order.objects.filter(card_last4=q)
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
        results.append(_order_result(order))
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
            results.append(_order_result(order, detail="found by its Stripe charge"))
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


@dataclass(frozen=True)
class InboundTokens:
    references: frozenset[str]
    last4s: frozenset[str]
    amounts_cents: frozenset[int]


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
    )


def orders_mentioned(*, from_email: str, subject: str, text: str, limit: int = 10) -> list[Order]:
    """Candidate orders for a support email, newest first: the sender's own, and any the text
    points to by reference, statement code, or card last 4 together with the amount (a last 4
    alone is shared by thousands of cards and never points to an order). Candidates are for
    support's eyes: whether the sender may hear about one is `inbound_sender_owns`."""
    from django.db.models import Q

    from accounts.models import normalize_email

    tokens = inbound_tokens(subject=subject, text=text)
    match = Q(email=normalize_email(from_email)) | Q(reference__in=tokens.references)
    if tokens.last4s and tokens.amounts_cents:
        pis = charges_by_card_last4(tokens.last4s).values("payment_intent_id")
        by_card = Q(card_last4__in=tokens.last4s) | Q(stripe_payment_intent_id__in=pis)
        match |= by_card & Q(amount_cents__in=tokens.amounts_cents)
    return list(Order.objects.filter(match).select_related("plan").order_by("-created_at")[:limit])


def inbound_sender_owns(order: Order, *, from_email: str, sender_authenticated: bool) -> bool:
    """May a reply to this sender carry this order's details? Only when the sender is the order's
    own address and the provider's envelope checks back the From (see support/inbound.py)."""
    from accounts.models import normalize_email

    return sender_authenticated and bool(from_email) and normalize_email(order.email) == normalize_email(from_email)


# The reply to a sender who is not (or cannot be shown to be) the order's address: our words only,
# nothing from any candidate order.
UNVERIFIED_SENDER_REPLY = (
    "About your order",
    "Hello,\n\nThank you for writing. To keep orders private, we can only discuss an order with the email "
    "address it was paid with. Please write to us again from that address, or use Find my order:\n"
    "{lookup_url}\nIt emails a link to your order's page to the address on the order.\n\n{agent}",
)


# --- Two people, one inbox: what a colleague did, the case's version, the wait ------------------

# A colleague who viewed, acted on or replied to a case this recently is named on it.
COLLEAGUE_WINDOW_MINUTES = 10
# What a console action's receipt says a person did.
ACTION_WORDS = {"refund": "refunded money", "extend": "extended access", "note": "added a note",
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
