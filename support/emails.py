"""Support's email: a person's reply, registered with the outbox in SupportConfig.ready()."""

from django.core.mail import EmailMultiAlternatives

from billing.services.outbox import order_email_sent, order_email_undelivered
from outbox.kinds import EmailKind
from outbox.messages import plain_message
from outbox.models import OutboundEmail

SUPPORT_REPLY = "support_reply"


def build_reply(email: OutboundEmail) -> EmailMultiAlternatives:
    """A person's reply, in their words as stored on the row, threaded under the customer's email:
    In-Reply-To and References name its Message-ID (RFC 5322 3.6.4)."""
    threading = {"In-Reply-To": email.in_reply_to, "References": email.in_reply_to} if email.in_reply_to else {}
    about = email.about.public_id.hex if email.about_id is not None else "reply"
    return plain_message(email, subject=email.subject, body=email.body, about=about, headers=threading)


# A reply is about the order of a sender who owns it (and then on its timeline), or about nothing.
EMAIL_KINDS = [EmailKind(SUPPORT_REPLY, "Reply from support", build=build_reply, about="optional",
                         on_sent=order_email_sent, on_undelivered=order_email_undelivered)]
