"""Turn an outbox row into the message the customer reads. Templates live in templates/emails/."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from sesame.utils import get_query_string

from billing.models import OutboundEmail
from billing.tokens import order_status_token


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
    entitlement = getattr(order, "entitlement", None) if order.user_id else None
    context = {
        "order": order,
        "plan": order.plan,
        "entitlement": entitlement,
        "status_url": settings.SITE_URL + reverse("billing:status", kwargs={"token": order_status_token(order)}),
        "support_email": settings.SUPPORT_EMAIL,
        "site_url": settings.SITE_URL,
    }
    if order.refund_deadline_at:
        context["refund_deadline"] = f"{timezone.localtime(order.refund_deadline_at):%A, %B %-d at %H:%M %Z}"
    if entitlement is not None and entitlement.revoked_at is not None:
        context["access_ended"] = True
    if order.user_id:
        context["signin_url"] = settings.SITE_URL + reverse("accounts:signin") + get_query_string(order.user)
    return context


def build_message(email: OutboundEmail) -> EmailMultiAlternatives:
    context = email_context(email)
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
        headers={"Message-ID": f"<outbox-{email.id}-{about}@backstop>"},
    )
    message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    # anymail: tag and metadata, so ESP events map back to the row
    message.tags = [email.kind]
    message.metadata = {"outbound_email_id": str(email.id)}
    if email.order_id is not None:
        message.metadata["order_reference"] = email.order.reference
    return message
