"""Support's part of erasing a customer (billing/services/erasure.py sends `customer_erased`):
the support mail they sent (and what they attached), and the team's words about them (notes, alerts)."""

from django.db.models import Q

from accounts.models import normalize_email
from billing.services.erasure import ErasurePlan, scrub_text
from support.attachments import inbound_attachments_delete
from support.models import Alert, InboundAttachment, InboundMessage, Note


def support_mail_scrub(*, plan: ErasurePlan) -> None:
    """Their messages lose sender, words and drafts; a message someone else sent about their
    orders keeps its sender (that person was not erased) with their address and names replaced."""
    messages = InboundMessage.objects.filter(Q(from_email__iexact=plan.email) | Q(orders__id__in=plan.order_ids))
    messages = list(messages.distinct())  # read once: the update below changes what the filter matches
    for message in messages:
        theirs = message.from_email.lower() == plan.email
        InboundMessage.objects.filter(pk=message.pk).update(
            from_email=plan.placeholder if theirs else message.from_email,
            from_name="" if theirs else scrub_text(message.from_name, plan),
            subject=scrub_text(message.subject, plan), body="" if theirs else scrub_text(message.body, plan),
            diagnosis=scrub_text(message.diagnosis, plan),
            done_automatically=scrub_text(message.done_automatically, plan),
            draft_subject=scrub_text(message.draft_subject, plan), draft_body=scrub_text(message.draft_body, plan))
    # A file cannot be scrubbed like text: every attachment of these messages goes, theirs or one
    # someone else sent about their orders (a screenshot of their statement), rows and files.
    inbound_attachments_delete(queryset=InboundAttachment.objects.filter(message__in=[m.pk for m in messages]))
    for note in Note.objects.filter(order_id__in=plan.order_ids):
        Note.objects.filter(pk=note.pk).update(body=scrub_text(note.body, plan))
    alerts = Alert.objects.filter(Q(order_id__in=plan.order_ids) | Q(summary__icontains=plan.email)
                                  | Q(details__icontains=plan.email))
    for alert in alerts:
        Alert.objects.filter(pk=alert.pk).update(summary=scrub_text(alert.summary, plan),
                                                 details=scrub_text(alert.details, plan))


def support_mail_held(email: str) -> bool:
    """Support mail from this address not yet erased: something to erase even with no order."""
    return InboundMessage.objects.filter(from_email__iexact=normalize_email(email)).exists()
