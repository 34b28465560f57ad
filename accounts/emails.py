"""Accounts' email: the password link, registered with the outbox in AccountsConfig.ready()."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from outbox.kinds import EmailKind
from outbox.messages import templated_message
from outbox.models import OutboundEmail

PASSWORD_RESET = "password_reset"


def password_reset_context(email: OutboundEmail) -> dict:
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


def build_password_reset(email: OutboundEmail) -> EmailMultiAlternatives:
    return templated_message(email, context=password_reset_context(email), about=f"account-{email.user_id}")


EMAIL_KINDS = [EmailKind(PASSWORD_RESET, "Password link", build=build_password_reset, about="account")]
