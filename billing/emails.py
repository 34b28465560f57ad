"""Billing's emails: how each kind turns an outbox row about an order into the message the customer
reads (templates in templates/emails/), registered with the outbox in BillingConfig.ready()."""

from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils import timezone
from sesame.utils import get_query_string

from accounts.periods import days_left
from accounts.tokens import reminders_off_token
from billing.email_kinds import ONCE_PER_ORDER, Kind
from billing.models import Order, OrderState, Plan
from billing.renewals import RENEWAL_KINDS
from billing.selectors import order_access, order_customer_status
from billing.services.outbox import order_email_noted_in_stripe, order_email_sent, order_email_undelivered
from billing.tokens import order_status_token, renew_path
from outbox.kinds import EmailKind
from outbox.messages import templated_message
from outbox.models import OutboundEmail


def email_context(email: OutboundEmail) -> dict:
    order = email.about
    context = {
        "order": order,
        "plan": order.plan,
        "status_url": settings.SITE_URL + reverse("billing:status", kwargs={"token": order_status_token(order)}),
        "support_email": settings.SUPPORT_EMAIL,
        "site_url": settings.SITE_URL,
    }
    if order.refund_deadline_at:
        context["refund_deadline"] = f"{timezone.localtime(order.refund_deadline_at):%A, %B %-d at %H:%M %Z}"
    # What the order bought and what the customer has in all: the confirmation's dates, and the
    # refund email's words about access (nothing about access to someone who never had it).
    context["access"] = order_access(order)
    context["statement_descriptor"] = order.statement_descriptor
    # Held money that nothing finishes on its own: a person checks it, or the deadline refunds it.
    context["held_for_review"] = order.state == OrderState.NEEDS_REVIEW
    if order.paid_at is not None:
        context["receipt_url"] = settings.SITE_URL + reverse("billing:receipt",
                                                             kwargs={"token": order_status_token(order)})
    if email.kind == Kind.ALREADY_YOURS:
        # When the checkout happened (the row is written in its request), and, to the address's own
        # inbox only, a way to add time after the plan's end.
        context["checkout_at"] = f"{timezone.localtime(email.created_at):%B %-d at %H:%M %Z}"
        if context["access"].until and order.user_id:
            context["renew_url"] = settings.SITE_URL + renew_path(order.user)
    # A one-click link only while the account has no password: once it has one, links stop working.
    if order.user_id and not order.user.has_usable_password():
        context["signin_url"] = settings.SITE_URL + reverse("accounts:signin") + get_query_string(order.user)
    # An email a person chose to send says who and why (else "as you asked" would be a guess).
    context["sent_by"] = email.sent_by
    context["send_reason"] = email.send_reason
    context.update(_renewal_context(email))
    context.update(_extension_context(email))
    context.update(_status_link_context(email))
    return context


def _status_link_context(email: OutboundEmail) -> dict:
    """Find my order's one email: every order the lookup found (the row's facts, newest first), each
    with its reference, where it stands in the status page's own words, and its own link. Rows
    owed before the list was kept name only their own order."""
    if email.kind != Kind.STATUS_LINK:
        return {}
    ids = email.facts.get("order_ids") or [email.about_id]
    by_id = Order.objects.select_related("plan").in_bulk(ids)
    # Only orders of this very address, whatever the row says: the link is a key to the order.
    orders = [by_id[i] for i in ids if i in by_id and by_id[i].email == email.about.email]
    return {"orders": [{
        "reference": order.reference,
        "plan": order.plan,
        "state": order_customer_status(order).headline,
        "status_url": settings.SITE_URL + reverse("billing:status", kwargs={"token": order_status_token(order)}),
    } for order in orders]}


def _extension_context(email: OutboundEmail) -> dict:
    """The days added and the new end as the extension decided them (the row's facts)."""
    if email.kind != Kind.ACCESS_EXTENDED:
        return {}
    return {"days_added": email.facts["days"], "ends_on": datetime.fromisoformat(email.facts["ends_at"]),
            "account_url": settings.SITE_URL + reverse("accounts:home")}


def _reminders_off_url(user) -> str:
    return settings.SITE_URL + reverse("accounts:reminders_off", kwargs={"token": reminders_off_token(user)})


def _renewal_context(email: OutboundEmail) -> dict:
    """Renewal reminders and the plan-ended email: the end date, the days left as the email is
    sent, what renewing costs (what checkout would charge today), the Renew link and the opt-out."""
    if email.kind not in RENEWAL_KINDS:
        return {}
    entitlement = email.about.entitlement
    plan = entitlement.plan if entitlement.plan.is_active else (
        Plan.objects.filter(is_active=True).order_by("amount_cents").first())
    left = days_left(entitlement.ends_at)
    return {
        "ends_on": entitlement.ends_at,
        "days_left": left,
        "ends_in": "today" if left <= 0 else "tomorrow" if left == 1 else f"in {left} days",
        "renew_plan": plan,
        "renew_url": settings.SITE_URL + renew_path(entitlement.user),
        "reminders_off_url": _reminders_off_url(entitlement.user),
        "account_url": settings.SITE_URL + reverse("accounts:home"),
    }


def _list_unsubscribe_headers(email: OutboundEmail) -> dict:
    """RFC 8058 one-click opt-out for the emails a customer may turn off: their mail program
    shows an Unsubscribe button that POSTs to the link (billing.account_views.reminders_off)."""
    if email.kind not in RENEWAL_KINDS:
        return {}
    return {"List-Unsubscribe": f"<{_reminders_off_url(email.about.entitlement.user)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def build_message(email: OutboundEmail) -> EmailMultiAlternatives:
    order = email.about
    return templated_message(email, context=email_context(email), about=order.public_id.hex,
                             headers=_list_unsubscribe_headers(email),
                             metadata={"order_reference": order.reference})


def _order_email(kind: Kind) -> EmailKind:
    return EmailKind(kind.value, kind.label, build=build_message, once_per_subject=kind in ONCE_PER_ORDER,
                     on_sent=order_email_sent, on_undelivered=order_email_undelivered,
                     after_sent=order_email_noted_in_stripe if kind in ONCE_PER_ORDER else None)


# Registered with the outbox by BillingConfig.ready().
EMAIL_KINDS = [_order_email(kind) for kind in Kind]
