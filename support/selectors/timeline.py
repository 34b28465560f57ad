"""Everything that happened to an order, newest first, from every source we have (order_timeline),
each event in words from its kind and data (event_words), and the link to a Stripe object in
Stripe's dashboard."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from djstripe import models as djstripe_models

from billing.models import Order, OrderEvent
from billing.money import format_money
from outbox import kinds as email_kinds
from support.selectors.common import S


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


# What each kind of event says, from its data (billing/services/history.py writes both). A row
# without the facts its words need (written before kinds, or a kind with no words here) shows the
# sentence stored with it.


def _money(data: dict, cents: str = "amount_cents", currency: str = "currency") -> str:
    return format_money(data[cents], data[currency])


def _email(data: dict) -> str:
    return f"{email_kinds.label(data['email_kind'])} to {data['recipient']}"


def _granted(data: dict) -> str:
    if data["stacked"]:
        return f"Access granted from {data['starts_on']} (after the plan already paid for) until {data['ends_on']}"
    return f"Access granted until {data['ends_on']}"


def _held(data: dict) -> str:
    refund_at = timezone.localtime(datetime.fromisoformat(data["refund_at"]))
    return (f"Money held without service: customer told, automatic refund at {refund_at:%Y-%m-%d %H:%M %Z} "
            "unless the order is finished first")


def _extended(data: dict) -> str:
    was = f"was {data['ended_on']}" if data["ended_on"] else "it had run out"
    return f"Access extended by {data['days']} days: paid time now ends {data['ends_on']} ({was}): {data['note']}"


_K = OrderEvent.Kind
EVENT_WORDS = {
    _K.CREATED: lambda d: f"{'Renewal order' if d['renewal'] else 'Order'} created for {_money(d)}",
    _K.RECREATED: lambda d: f"Order recreated from Stripe's records: Stripe holds {_money(d)} but our database "
                            "had no such order",
    _K.PAYMENT_SET_UP: lambda d: "Payment set up with Stripe",
    _K.PAYMENT_LINKED: lambda d: "Linked to its Stripe payment, found by the sweep",
    _K.ACCESS_GRANTED: _granted,
    _K.REFUND_RECORDED: lambda d: f"Stripe shows {_money(d, 'refunded_cents')} refunded in total" + (
        f": the customer's bank sent back {_money(d, 'sent_back_cents')}" if d.get("sent_back_cents") else ""),
    _K.MONEY_HELD: _held,
    _K.REFUND_REQUESTED: lambda d: f"{'Refund' if d['full'] else 'Partial refund'} of {_money(d)} requested: "
                                   f"{d['note']}",
    _K.REFUND_FAILED: lambda d: f"Stripe did not confirm the refund of {_money(d)}: {d['error']}",
    _K.REFUND_ACCEPTED: lambda d: f"Stripe accepted the refund of {_money(d)} ({d['status']})",
    _K.ACCEPTED_AMOUNT: lambda d: (f"Accepted {_money(d)} as Stripe took it for the "
                                   f"{_money(d, 'asked_cents', 'asked_currency')} order: {d['note']}"),
    _K.RETURNED_ANOTHER_WAY: lambda d: f"Returned {_money(d)} to the customer another way: {d['how']}",
    _K.TIME_MOVED: lambda d: f"Time moved {d['why']}: now {d['starts_on']} to {d['ends_on']}",
    _K.ACCESS_EXTENDED: _extended,
    _K.EMAIL_SENT: lambda d: f"Email sent: {_email(d)}",
    _K.EMAIL_BOUNCED: lambda d: f"Email {d['event_type']}: {_email(d)} {d['description']}".strip(),
    _K.EMAIL_ALREADY_SENT: lambda d: (f"{email_kinds.label(d['email_kind'])} already sent on "
                                      f"{d['sent_on']} by Stripe's record of it; not sent again (our database was "
                                      "restored from before)"),
    _K.RESEND_ASKED: lambda d: f"Asked to resend: {_email(d)}",
    _K.SIGNIN_LINK_SENT: lambda d: f"Sign-in link sent to {d['recipient']}: {d['note']}",
    _K.REPLIED: lambda d: f"Replied to the customer's email: {d['subject']}",
    _K.CASE_TAKEN: lambda d: "Took the case" + (f", from {d['previous_name']}" if d["previous_name"] else ""),
    _K.TEAM_ALERTED: lambda d: f"Team alerted: {d['summary']}",
    _K.SIGNED_IN: lambda d: ("Signed in to their account with "
                             + ("a sign-in link" if d["method"] == "link" else "their password")),
    _K.REMINDERS_OFF: lambda d: f"Turned off renewal reminders ({d['via']})",
}
# state_changed and payment_canceled say why in the sentence settle or the caller decided (their
# `because`); legacy rows have only their sentence.


def event_words(event: OrderEvent) -> str:
    """The event in words, from its kind and data; the stored sentence where the data cannot say it."""
    words = EVENT_WORDS.get(event.kind)
    if words is None:
        return event.reason
    try:
        return words(event.data or {})
    except (KeyError, TypeError, ValueError):
        return event.reason  # written before its kind had these facts (migration 0016)


def event_actor(event: OrderEvent) -> str:
    """Who acted: the staff member by name, or the non-person actor (webhook, sweep, customer, …)."""
    if event.actor_user_id is not None:
        return event.actor_user.get_full_name() or event.actor_user.email
    return event.actor


def order_timeline(order: Order) -> list[TimelineEntry]:
    """Everything that happened to the order, newest first, from every source we have."""
    labels = dict(S.choices)
    entries = []
    for event in order.events.select_related("actor_user"):
        actor = event_actor(event)
        if event.to_state and event.from_state:
            title = f"{labels.get(event.from_state, event.from_state)} → {labels.get(event.to_state)}, by {actor}"
        elif event.to_state:
            title = f"{labels.get(event.to_state)}, by {actor}"
        else:
            title = actor
        entries.append(TimelineEntry(event.created_at, "event", title, event_words(event)))
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
