"""Everything that happened to an order, newest first, from every source we have (order_timeline),
and the link to a Stripe object in Stripe's dashboard."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from djstripe import models as djstripe_models

from billing.models import Order
from billing.money import format_money
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
