"""Retention of support mail (docs/retention.md): answered messages past RETAIN_SUPPORT_MAIL are
deleted with their replies' links, claims and views; open ones stay until a person answers them."""

import logging

from django.conf import settings
from django.utils import timezone

from support.models import InboundMessage

logger = logging.getLogger(__name__)


def support_mail_prune(*, now=None) -> int:
    now = now or timezone.now()
    deleted, _ = InboundMessage.objects.filter(status=InboundMessage.Status.ANSWERED,
                                               received_at__lt=now - settings.RETAIN_SUPPORT_MAIL).delete()
    if deleted:
        logger.info("retention: deleted %s answered support message rows", deleted)
    return deleted
