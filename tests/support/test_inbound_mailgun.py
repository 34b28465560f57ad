"""Support mail from a second provider, chosen by configuration alone (ANYMAIL_ESP=mailgun and its
signing key): Mailgun's "forward()" route posts the email fully parsed as multipart/form-data, each
attachment a file field (attachment-1, ...), signed with the account's webhook signing key."""

import hashlib
import hmac
import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.esp_webhooks import esp_webhook_urls
from support.models import InboundAttachment, InboundMessage
from tests.config.test_settings_from_env import run_manage

pytestmark = pytest.mark.django_db

SIGNING_KEY = "key-mailgun-webhook-signing-0123456789"
AUTH = {"HTTP_AUTHORIZATION": "Basic ZXNwOmhvb2stc2VjcmV0"}  # esp:hook-secret, in the route's URL


@pytest.fixture(autouse=True)
def mailgun(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANYMAIL_ESP = "mailgun"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:hook-secret", "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def signed(fields, key=SIGNING_KEY):
    timestamp, token = str(int(time.time())), "06c96bafc3f42a66b9edd546347a2fe18dc23461fe80dc52f0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {**fields, "timestamp": timestamp, "token": token, "signature": signature}


def mailgun_inbound(*, sender="ada@example.com", attachments=()):
    fields = {
        "recipient": "support@backstop.localhost", "sender": sender, "from": f"Ada Lovelace <{sender}>",
        "subject": "Charged twice", "body-plain": "Hi, see the screenshot.", "stripped-text": "Hi, see the screenshot.",
        "body-html": "<p>Hi, see the screenshot.</p>",
        "message-headers": json.dumps([
            ["X-Mailgun-Spf", "Pass"], ["X-Mailgun-Sflag", "No"], ["X-Mailgun-Sscore", "0.0"],
            ["Received", "from mail.example.com by mxa.mailgun.org with ESMTP"],
            ["From", f"Ada Lovelace <{sender}>"], ["To", "support@backstop.localhost"],
            ["Subject", "Charged twice"], ["Date", "Thu, 26 Nov 2026 14:05:32 +0000"],
            ["Message-Id", "<CAF0ada@mail.example.com>"],
        ]),
        "attachment-count": str(len(attachments)),
    }
    for number, (name, content, content_type) in enumerate(attachments, start=1):
        fields[f"attachment-{number}"] = SimpleUploadedFile(name, content, content_type)
    return signed(fields)


@pytest.mark.urls("tests.support.urls_mailgun")
def test_a_mailgun_email_with_an_attachment_becomes_a_case_with_it(client):
    content = b"%PDF-1.4 " + b"x" * (3 * 1024 * 1024)

    response = client.post(reverse("anymail:mailgun_inbound_webhook"),
                           data=mailgun_inbound(attachments=[("statement.pdf", content, "application/pdf")]), **AUTH)

    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert (message.from_email, message.subject) == ("ada@example.com", "Charged twice")
    assert message.body == "Hi, see the screenshot."
    assert message.rfc_message_id == "<CAF0ada@mail.example.com>"
    stored = InboundAttachment.objects.get()
    assert (stored.message, stored.filename, stored.size) == (message, "statement.pdf", len(content))


@pytest.mark.urls("tests.support.urls_mailgun")
def test_a_mailgun_post_with_a_wrong_signature_is_refused(client):
    fields = mailgun_inbound()
    fields["signature"] = "0" * 64

    response = client.post(reverse("anymail:mailgun_inbound_webhook"), data=fields, **AUTH)

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


@pytest.mark.urls("tests.support.urls_mailgun")
def test_a_mailgun_post_without_a_sender_is_refused(client):
    fields = mailgun_inbound()
    headers = [h for h in json.loads(fields["message-headers"]) if h[0] != "From"]
    fields.update({"message-headers": json.dumps(headers), "from": "", "sender": ""})

    response = client.post(reverse("anymail:mailgun_inbound_webhook"), data=fields, **AUTH)

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


@pytest.mark.urls("tests.support.urls_mailgun")
def test_mailgun_raw_mime_route_is_routed_too(client):
    # anymail's one pattern answers /inbound/ and /inbound_mime/ (a regular expression, not a path).
    response = client.post("/anymail/mailgun/inbound_mime/", data=signed({
        "body-mime": "From: Ada <ada@example.com>\r\nTo: support@backstop.localhost\r\nSubject: Hi\r\n"
                     "Message-ID: <m1@example.com>\r\n\r\nHello\r\n",
        "recipient": "support@backstop.localhost", "sender": "ada@example.com"}), **AUTH)

    assert response.status_code == 200
    assert InboundMessage.objects.get().subject == "Hi"


def test_only_the_configured_providers_webhooks_are_routed():
    names = {pattern.name for pattern in esp_webhook_urls("mailgun")[0]}

    assert names == {"mailgun_inbound_webhook", "mailgun_tracking_webhook"}


def test_a_provider_missing_its_own_setting_stops_start_up_naming_it():
    result = run_manage("check", env_overrides={"ANYMAIL_ESP": "mailgun"})

    assert result.returncode != 0
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in result.stderr


def test_a_providers_own_setting_is_read_from_the_environment_by_anymails_name():
    result = run_manage("check", env_overrides={"ANYMAIL_ESP": "mailgun",
                                                "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY})

    assert result.returncode == 0, result.stderr


def test_a_provider_anymail_cannot_take_mail_from_stops_start_up():
    result = run_manage("check", env_overrides={"ANYMAIL_ESP": "postmarkk"})

    assert result.returncode != 0
    assert "ANYMAIL_ESP" in result.stderr
