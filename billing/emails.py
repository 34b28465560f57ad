"""Turn an outbox row into the message the customer reads. Templates live in templates/emails/."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from sesame.utils import get_query_string

from accounts.tokens import reminders_off_token
from billing.models import Order, OrderState, OutboundEmail, Plan
from billing.renewals import RENEWAL_KINDS, days_left
from billing.selectors import order_access, order_customer_status
from billing.tokens import order_status_token, renew_path
from config.context_processors import brand


def _account_context(email: OutboundEmail) -> dict:
    """The password link. Its token is made now, as it is sent, so none is ever stored; it stops
    working once used, once the password changes, or after PASSWORD_RESET_TIMEOUT."""
    user = email.user
    path = reverse("accounts:password_reset_confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)})
    return {
        "user": user,
        "reset_url": settings.SITE_URL + path,
        "support_email": settings.SUPPORT_EMAIL,
        "site_url": settings.SITE_URL,
    }


def email_context(email: OutboundEmail) -> dict:
    if email.order_id is None:
        return _account_context(email)
    order = email.order
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
    if email.kind == OutboundEmail.Kind.ALREADY_YOURS:
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
    if email.kind != OutboundEmail.Kind.STATUS_LINK:
        return {}
    ids = email.facts.get("order_ids") or [email.order_id]
    by_id = Order.objects.select_related("plan").in_bulk(ids)
    # Only orders of this very address, whatever the row says: the link is a key to the order.
    orders = [by_id[i] for i in ids if i in by_id and by_id[i].email == email.order.email]
    return {"orders": [{
        "reference": order.reference,
        "plan": order.plan,
        "state": order_customer_status(order).headline,
        "status_url": settings.SITE_URL + reverse("billing:status", kwargs={"token": order_status_token(order)}),
    } for order in orders]}


def _extension_context(email: OutboundEmail) -> dict:
    """The days added and the new end as the extension decided them (the row's facts)."""
    if email.kind != OutboundEmail.Kind.ACCESS_EXTENDED:
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
    entitlement = email.order.entitlement
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
    shows an Unsubscribe button that POSTs to the link (accounts.views.reminders_off)."""
    if email.kind not in RENEWAL_KINDS:
        return {}
    return {"List-Unsubscribe": f"<{_reminders_off_url(email.order.entitlement.user)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _support_reply(email: OutboundEmail) -> EmailMultiAlternatives:
    """A person's reply, in their words as stored on the row, threaded under the customer's email:
    In-Reply-To and References name its Message-ID (RFC 5322 3.6.4)."""
    threading = {"In-Reply-To": email.in_reply_to, "References": email.in_reply_to} if email.in_reply_to else {}
    about = email.order.public_id.hex if email.order_id is not None else "reply"
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.body, from_email=settings.DEFAULT_FROM_EMAIL, to=[email.recipient],
        reply_to=[settings.SUPPORT_EMAIL],
        headers={"Message-ID": f"<outbox-{email.id}-{about}@backstop>", **threading})
    message.tags = [email.kind]
    message.metadata = {"outbound_email_id": str(email.id)}
    return message


def build_message(email: OutboundEmail) -> EmailMultiAlternatives:
    if email.kind == OutboundEmail.Kind.SUPPORT_REPLY:
        return _support_reply(email)
    # The product's name and sign-off, as pages get them from the context processor.
    context = {**brand(), **email_context(email)}
    base = f"emails/{email.kind}"
    about = email.order.public_id.hex if email.order_id is not None else f"account-{email.user_id}"
    subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{base}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
        reply_to=[settings.SUPPORT_EMAIL],
        # A stable Message-ID per outbox row lets mail systems recognise a copy of the same email.
        headers={"Message-ID": f"<outbox-{email.id}-{about}@backstop>", **_list_unsubscribe_headers(email)},
    )
    message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    # anymail: tag and metadata, so ESP events map back to the row
    message.tags = [email.kind]
    message.metadata = {"outbound_email_id": str(email.id)}
    if email.order_id is not None:
        message.metadata["order_reference"] = email.order.reference
    return message
