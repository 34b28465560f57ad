"""Retention of support mail (docs/retention.md): answered messages past RETAIN_SUPPORT_MAIL are
deleted with their attachments (rows and files), replies' links, claims and views; open ones stay
until a person answers them."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from support.attachments import inbound_attachments_delete
from support.models import InboundAttachment, InboundMessage

logger = logging.getLogger(__name__)


def support_mail_prune(*, now=None) -> int:
    now = now or timezone.now()
    expired = InboundMessage.objects.filter(status=InboundMessage.Status.ANSWERED,
                                            received_at__lt=now - settings.RETAIN_SUPPORT_MAIL)
    with transaction.atomic():
        # Their files first: the cascade would delete the rows and leave the files behind.
        files = inbound_attachments_delete(queryset=InboundAttachment.objects.filter(message__in=expired))
        deleted, _ = expired.delete()
        deleted += files
    if deleted:
        logger.info("retention: deleted %s answered support message rows", deleted)
    return deleted
