"""The files customers attach to support mail: kept in the default storage up to a cap per email,
and removed (rows and files) with their message by retention and erasure (decision 0027)."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from support.models import InboundAttachment

logger = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True)
class Attachment:
    """One attachment as the provider handed it over (support/inbound.py)."""

    filename: str
    content_type: str
    content: bytes


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


def inbound_attachments_store(*, message, attachments: list[Attachment]) -> list[InboundAttachment]:
    """Keep each attachment that fits in INBOUND_ATTACHMENTS_MAX_MB (all of this email's together, in
    the order sent); one that would pass it gets a row that says so and no file. Call once per new
    message, inside its transaction."""
    budget = settings.INBOUND_ATTACHMENTS_MAX_MB * MB
    stored = []
    for attachment in attachments:
        size = len(attachment.content)
        row = InboundAttachment(message=message, filename=attachment.filename[:255] or "(no name)",
                                content_type=attachment.content_type[:255], size=size)
        if size <= budget:
            budget -= size
            # The file is written before the row commits: a rollback leaves an unreferenced file,
            # never a row without its file.
            row.file.save("attachment", ContentFile(attachment.content), save=False)
        else:
            row.not_kept = (f"Not kept: this {megabytes(size)} file would take the email's attachments over "
                            f"the {settings.INBOUND_ATTACHMENTS_MAX_MB} MB limit")
            logger.warning("Support email %s: attachment of %s bytes not kept (over INBOUND_ATTACHMENTS_MAX_MB)",
                           message.id, size)
        row.save()
        stored.append(row)
    return stored


def inbound_attachments_delete(*, queryset) -> int:
    """Delete these attachments' rows now and their files once that commits (a rollback keeps both).
    A file that cannot be removed is logged, not raised: the row, the only way to it, is gone."""
    names = [name for name in queryset.values_list("file", flat=True) if name]
    deleted, _ = queryset.delete()

    def remove_files():
        for name in names:
            try:
                default_storage.delete(name)
            except OSError as exc:
                logger.warning("Support mail: could not delete attachment file %s: %s", name, exc)

    transaction.on_commit(remove_files)
    return deleted
