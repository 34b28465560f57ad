"""Attachments live and go with their support email: pruned with it after RETAIN_SUPPORT_MAIL,
erased with the customer (files too), listed in the customer's export."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from support.attachments import Attachment
from support.models import InboundAttachment, InboundMessage
from support.retention import support_mail_prune
from support.services import inbound_message_receive

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def receive(message_id, sender="ada@example.com"):
    inbound_message_receive(message_id=message_id, from_email=sender, from_name="Ada", subject="Statement",
                            text="Attached.", attachments=[Attachment("statement.png", "image/png", b"\x89PNG" * 10)])
    message = InboundMessage.objects.get(message_id=message_id)
    return message, message.attachments.get()


def test_pruned_support_mail_takes_its_attachment_files_with_it(django_capture_on_commit_callbacks):
    message, attachment = receive("m-old")
    InboundMessage.objects.filter(pk=message.pk).update(status=InboundMessage.Status.ANSWERED,
                                                        received_at=NOW - timedelta(days=800))

    with django_capture_on_commit_callbacks(execute=True):
        support_mail_prune(now=NOW)

    assert not InboundAttachment.objects.exists()
    assert not default_storage.exists(attachment.file.name)


def test_open_support_mail_keeps_its_attachments_however_old(django_capture_on_commit_callbacks):
    message, attachment = receive("m-open")
    InboundMessage.objects.filter(pk=message.pk).update(received_at=NOW - timedelta(days=800))

    with django_capture_on_commit_callbacks(execute=True):
        support_mail_prune(now=NOW)

    assert default_storage.exists(attachment.file.name)


def test_erasing_a_customer_deletes_what_they_attached(stripe_emulator, django_capture_on_commit_callbacks):
    _message, attachment = receive("m-ada")
    _other, others = receive("m-bo", sender="bo@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("customer_erase", "ada@example.com", "--yes", stdout=StringIO())

    assert list(InboundAttachment.objects.all()) == [others]
    assert not default_storage.exists(attachment.file.name)
    assert default_storage.exists(others.file.name)


def test_the_customers_export_lists_their_attachments():
    receive("m-export")
    out = StringIO()

    call_command("customer_export", "ada@example.com", stdout=out)

    [mail] = json.loads(out.getvalue())["support_mail"]
    assert mail["attachments"] == [{"filename": "statement.png", "content_type": "image/png", "size": 40,
                                    "kept": True, "not_kept": ""}]
