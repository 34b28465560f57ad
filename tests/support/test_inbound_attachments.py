"""What a customer attaches to a support email is kept (up to INBOUND_ATTACHMENTS_MAX_MB per email),
shown on the case and downloadable by staff only; what is over the cap is said on the case.

Postmark's inbound JSON as Postmark posts it: each attachment base64 in `Attachments`, with
`ContentID` set for an image pasted into the text (an inline part)."""

import base64
import json

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from support.models import InboundAttachment, InboundMessage
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"esp:hook-secret").decode()}
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-secret"}


def attachment(name, content: bytes, content_type="image/png", content_id=""):
    return {"Name": name, "Content": base64.b64encode(content).decode(), "ContentType": content_type,
            "ContentLength": len(content), "ContentID": content_id}


def postmark_payload(*, attachments=(), sender="ada@example.com", message_id="pm-attach-1", text="See attached."):
    return {
        "FromName": "Ada Lovelace", "MessageStream": "inbound", "From": sender,
        "FromFull": {"Email": sender, "Name": "Ada Lovelace", "MailboxHash": ""},
        "To": "support@backstop.localhost",
        "ToFull": [{"Email": "support@backstop.localhost", "Name": "", "MailboxHash": ""}],
        "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": "support@backstop.localhost",
        "Subject": "My bank statement", "MessageID": message_id, "ReplyTo": "", "MailboxHash": "",
        "Date": "Thu, 26 Nov 2026 14:05:32 +0000", "TextBody": text, "HtmlBody": f"<p>{text}</p>",
        "StrippedTextReply": "", "Tag": "",
        "Headers": [{"Name": "Return-Path", "Value": f"<{sender}>"}] if sender else [],
        "Attachments": list(attachments),
    }


def post(client, payload):
    return client.post(reverse("anymail:postmark_inbound_webhook"), data=json.dumps(payload),
                       content_type="application/json", **AUTH)


def png(size: int) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256 + 1))[:size]


def test_an_attachment_is_stored_with_its_name_type_and_size(client):
    content = png(2 * MB)

    response = post(client, postmark_payload(attachments=[attachment("statement.png", content)]))

    assert response.status_code == 200
    stored = InboundAttachment.objects.get()
    assert (stored.filename, stored.content_type, stored.size) == ("statement.png", "image/png", len(content))
    with default_storage.open(stored.file.name) as handle:
        assert handle.read() == content


def test_a_six_megabyte_email_is_taken_not_refused(client):
    # Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE answered 400 to this one.
    response = post(client, postmark_payload(attachments=[attachment("scan.pdf", png(6 * MB), "application/pdf")]))

    assert response.status_code == 200
    assert InboundAttachment.objects.get().size == 6 * MB


def test_an_image_pasted_into_the_text_is_kept_too(client):
    post(client, postmark_payload(attachments=[attachment("image001.png", png(1000), content_id="ii_abc@mail")]))

    assert InboundAttachment.objects.get().filename == "image001.png"


def test_attachments_past_the_cap_are_not_kept_and_the_case_says_why(client, settings):
    settings.INBOUND_ATTACHMENTS_MAX_MB = 1
    first, second = png(MB // 2), png(MB // 2 + 1)

    post(client, postmark_payload(attachments=[attachment("a.png", first), attachment("b.png", second)]))

    kept, dropped = InboundAttachment.objects.order_by("id")
    assert kept.file
    assert kept.size == len(first)
    assert not dropped.file
    assert dropped.not_kept == "Not kept: this 0.5 MB file would take the email's attachments over the 1 MB limit"
    assert InboundMessage.objects.get().body == "See attached."  # the customer's words are kept whatever


def test_a_provider_retry_stores_the_attachments_once(client):
    payload = postmark_payload(attachments=[attachment("a.png", png(1000))])

    post(client, payload)
    post(client, payload)

    assert InboundAttachment.objects.count() == 1


def test_an_email_far_larger_than_the_cap_is_refused_with_413_before_it_is_read(client, settings):
    settings.INBOUND_ATTACHMENTS_MAX_MB = 1

    response = post(client, postmark_payload(attachments=[attachment("huge.png", png(3 * MB))]))

    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


def test_a_large_post_without_the_secret_is_refused_before_its_body_is_read(client):
    payload = json.dumps(postmark_payload(attachments=[attachment("a.png", png(3 * MB))]))

    response = client.post(reverse("anymail:postmark_inbound_webhook"), data=payload,
                           content_type="application/json")

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("payload", [{}, {"Subject": "hi", "TextBody": "hello", "MessageID": "x"},
                                     {"From": "", "FromFull": {"Email": "", "Name": ""}, "TextBody": "hello"},
                                     {"From": "not an address", "FromFull": {"Email": "not an address"}}])
def test_an_inbound_post_without_a_sender_is_refused_with_400_and_makes_no_case(client, payload):
    response = client.post(reverse("anymail:postmark_inbound_webhook"), data=json.dumps(payload),
                           content_type="application/json", **AUTH)

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


# --- The case page ---------------------------------------------------------------------------

@pytest.fixture
def case(client, settings):
    settings.INBOUND_ATTACHMENTS_MAX_MB = 1
    post(client, postmark_payload(attachments=[attachment("statement.png", png(MB // 2)),
                                               attachment("video.mov", png(MB), "video/quicktime")]))
    return InboundMessage.objects.get()


def test_the_case_page_lists_each_attachment_and_what_was_not_kept(console, case):
    page = console.get(reverse("admin:support_inboundmessage_change", args=[case.pk])).content.decode()

    kept = case.attachments.get(filename="statement.png")
    assert reverse("admin:support_inboundmessage_attachment", args=[case.pk, kept.pk]) in page
    assert "statement.png" in page
    assert "512.0\xa0KB" in page
    assert "video.mov" in page
    assert "Not kept: this 1.0 MB file would take the email&#x27;s attachments over the 1 MB limit" in page


def test_staff_download_an_attachment_as_a_file(console, case):
    kept = case.attachments.get(filename="statement.png")

    response = console.get(reverse("admin:support_inboundmessage_attachment", args=[case.pk, kept.pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="statement.png"'
    assert response["Content-Type"] == "application/octet-stream"  # never rendered by the browser
    assert b"".join(response.streaming_content) == png(MB // 2)


def test_no_one_signed_out_downloads_an_attachment(client, case):
    kept = case.attachments.get(filename="statement.png")
    client.logout()

    response = client.get(reverse("admin:support_inboundmessage_attachment", args=[case.pk, kept.pk]))

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_customer_signed_in_to_their_account_cannot_download_an_attachment(client, case):
    client.force_login(UserFactory())
    kept = case.attachments.get(filename="statement.png")

    response = client.get(reverse("admin:support_inboundmessage_attachment", args=[case.pk, kept.pk]))

    assert response.status_code == 302


def test_staff_without_the_support_mail_permission_cannot_download_an_attachment(client, case):
    client.force_login(StaffFactory())  # staff, in no group: may not view support mail
    kept = case.attachments.get(filename="statement.png")

    response = client.get(reverse("admin:support_inboundmessage_attachment", args=[case.pk, kept.pk]))

    assert response.status_code == 403


def test_an_attachment_that_was_not_kept_has_nothing_to_download(console, case):
    dropped = case.attachments.get(filename="video.mov")

    response = console.get(reverse("admin:support_inboundmessage_attachment", args=[case.pk, dropped.pk]))

    assert response.status_code == 404
