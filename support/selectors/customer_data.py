"""Everything Backstop holds about one person, as one JSON-ready document (issue 22, data duties).

Read by `manage.py customer_export EMAIL` and the console's Export action; both only call
`customer_data`. Here, not in billing, because support mail is part of it and billing never
imports support. Personal rows are found by the address (normalised) and by the account it signs
in to: an order, an email, a support message about them.
"""

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from accounts.models import AccessDelivery, Entitlement, User, normalize_email
from billing.models import Order, OrderEvent, OrderRefund, StripeCustomer
from outbox.models import OutboundEmail
from support.emails import SUPPORT_REPLY
from support.models import InboundMessage


def _when(value):
    return value.isoformat() if value is not None else None


def _account(user: User | None) -> dict | None:
    if user is None:
        return None
    return {
        "email": user.email, "full_name": user.full_name, "company_name": user.company_name,
        "vat_number": user.vat_number, "renewal_reminders": user.renewal_reminders,
        "is_active": user.is_active, "has_password": user.has_usable_password(),
        "date_joined": _when(user.date_joined), "last_login": _when(user.last_login),
    }


def _entitlement(entitlement: Entitlement) -> dict:
    return {
        "order": entitlement.order.reference, "plan": entitlement.plan.code,
        "starts_at": _when(entitlement.starts_at), "ends_at": _when(entitlement.ends_at),
        "extra_days": entitlement.extra_days, "revoked_at": _when(entitlement.revoked_at),
        "revoked_reason": entitlement.revoked_reason, "ended_at": _when(entitlement.ended_at),
    }


def _payment(order: Order) -> dict:
    return {
        "stripe_customer": order.stripe_customer_id or None,
        "stripe_payment_intent": order.stripe_payment_intent_id, "stripe_charge": order.stripe_charge_id,
        "status": order.payment_status or None, "amount_received_cents": order.amount_received_cents,
        "currency": order.received_currency or None, "amount_refunded_cents": order.amount_refunded_cents,
        "card_brand": order.card_brand or None, "card_last4": order.card_last4 or None,
        "statement_descriptor": order.statement_descriptor or None,
    }


def _refund(refund: OrderRefund) -> dict:
    return {"stripe_refund": refund.stripe_refund_id, "amount_cents": refund.amount_cents,
            "currency": refund.currency, "status": refund.status, "created_at": _when(refund.created_at)}


def _event(event: OrderEvent) -> dict:
    return {"kind": event.kind, "when": _when(event.created_at), "actor": event.actor,
            "from_state": event.from_state or None, "to_state": event.to_state or None,
            "reason": event.reason, "data": event.data, "stripe_ids": event.stripe_ids}


def _order(order: Order) -> dict:
    return {
        "reference": order.reference, "email": order.email, "full_name": order.full_name,
        "plan": order.plan.code, "amount_cents": order.amount_cents, "currency": order.currency,
        "state": order.state, "renewal": order.renewal, "company_name": order.buyer_company_name,
        "vat_number": order.buyer_vat_number, "created_at": _when(order.created_at),
        "paid_at": _when(order.paid_at), "refund_reason": order.refund_reason,
        "payment": _payment(order),
        "refunds": [_refund(refund) for refund in order.refunds.all()],
        "events": [_event(event) for event in order.events.all()],
        "notes": [{"when": _when(note.created_at), "body": note.body} for note in order.notes.all()],
    }


def _email(email: OutboundEmail) -> dict:
    document = {"kind": email.kind, "to": email.recipient, "status": email.status,
                "order": email.about.reference if isinstance(email.about, Order) else None,
                "created_at": _when(email.created_at), "sent_at": _when(email.sent_at),
                "delivery": email.esp_status or None}
    if email.kind == SUPPORT_REPLY:
        # A person's words are on the row; the other kinds are templates filled from the order.
        document.update(subject=email.subject, body=email.body)
    return document


def _inbound(message: InboundMessage) -> dict:
    return {
        "received_at": _when(message.received_at), "from_email": message.from_email,
        "from_name": message.from_name, "subject": message.subject, "body": message.body,
        "status": message.status, "orders": [order.reference for order in message.orders.all()],
        "answered_at": _when(message.answered_at),
        # The files themselves are downloaded from the case in the console.
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "kept": bool(a.file), "not_kept": a.not_kept} for a in message.attachments.all()],
    }


def customer_data(email: str) -> dict | None:
    """The document for this address, or None if Backstop holds nothing about it."""
    email = normalize_email(email)
    user = User.objects.filter(email=email).first()
    orders = list(Order.objects.filter(Q(email=email) | Q(user__email=email)).select_related("plan")
                  .prefetch_related("refunds", "events", "notes").order_by("created_at"))
    about_orders = Q(about_type=ContentType.objects.get_for_model(Order), about_id__in=[order.id for order in orders])
    emails = list(OutboundEmail.objects.filter(Q(recipient=email) | about_orders | Q(user__email=email))
                  .prefetch_related("about").order_by("created_at", "id"))
    messages = list(InboundMessage.objects.filter(Q(from_email__iexact=email) | Q(orders__in=orders)).distinct()
                    .prefetch_related("orders", "attachments").order_by("received_at"))
    stripe_customers = sorted(set(StripeCustomer.objects.filter(email=email)
                                  .values_list("stripe_customer_id", flat=True))
                              | {order.stripe_customer_id for order in orders if order.stripe_customer_id})
    if user is None and not orders and not emails and not messages and not stripe_customers:
        return None
    entitlements = (Entitlement.objects.filter(user=user).select_related("order", "plan").order_by("starts_at")
                    if user is not None else [])
    deliveries = (AccessDelivery.objects.filter(user=user).order_by("created_at") if user is not None else [])
    return {
        "email": email,
        "account": _account(user),
        "entitlements": [_entitlement(entitlement) for entitlement in entitlements],
        "stripe_customers": stripe_customers,
        "orders": [_order(order) for order in orders],
        "emails_sent": [_email(email_row) for email_row in emails],
        "support_mail": [_inbound(message) for message in messages],
        "access_updates_to_the_product": [
            {"event": delivery.event_type, "created_at": _when(delivery.created_at), "status": delivery.status}
            for delivery in deliveries],
    }

