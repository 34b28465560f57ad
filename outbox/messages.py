"""What every email the outbox sends has in common: who it is from, where replies go, a stable
Message-ID per row, and the tag and metadata that map the ESP's reports back to the row."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from config.context_processors import brand
from outbox.models import OutboundEmail


def message_id(email: OutboundEmail, about: str) -> str:
    # A stable Message-ID per outbox row lets mail systems recognise a copy of the same email.
    return f"<outbox-{email.id}-{about}@backstop>"


def plain_message(email: OutboundEmail, *, subject: str, body: str, about: str,
                  headers: dict | None = None) -> EmailMultiAlternatives:
    """An email in words given on the row or by the caller (e.g. a person's reply)."""
    message = EmailMultiAlternatives(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[email.recipient],
        reply_to=[settings.SUPPORT_EMAIL], headers={"Message-ID": message_id(email, about), **(headers or {})})
    # anymail: tag and metadata, so ESP events map back to the row
    message.tags = [email.kind]
    message.metadata = {"outbound_email_id": str(email.id)}
    return message


def templated_message(email: OutboundEmail, *, context: dict, about: str, headers: dict | None = None,
                      metadata: dict | None = None) -> EmailMultiAlternatives:
    """The kind's templates, templates/emails/<kind>_subject.txt, <kind>.txt and <kind>.html."""
    base = f"emails/{email.kind}"
    # The product's name and sign-off, as pages get them from the context processor.
    context = {**brand(), **context}
    message = plain_message(email, subject=" ".join(render_to_string(f"{base}_subject.txt", context).split()),
                            body=render_to_string(f"{base}.txt", context), about=about, headers=headers)
    message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    message.metadata.update(metadata or {})
    return message
