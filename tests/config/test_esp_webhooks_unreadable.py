"""The email provider's webhooks answer a payload they cannot read with a 400, never a 500.

Found by tests/fuzz/test_fuzz_esp_webhooks.py: anymail's Postmark views parsed any body as the JSON
object they expect, and the inbound receiver used the provider's MessageID whatever its type.
"""

import base64
import json

import pytest
from django.urls import reverse

from outbox.models import OutboundEmail
from support.models import InboundMessage
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"esp:hook-secret").decode()}


@pytest.fixture(autouse=True)
def shared_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-secret"}


def post(client, name, body):
    return client.post(reverse(f"anymail:{name}"), data=body, content_type="application/json", **AUTH)


@pytest.mark.parametrize("body", [b"", b"not json", b"\x80\x81", b"0", b"[]", b'"Delivery"', b"[{}]",
                                  b'{"RecordType": "Delivery", "Metadata": []}'])
def test_a_delivery_report_that_cannot_be_read_is_refused_with_400(client, body):
    assert post(client, "postmark_tracking_webhook", body).status_code == 400


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"1", b"null", b'{"Headers": [{}]}', b'{"Headers": "x"}',
                                  b'{"From": "a@example.com", "TextBody": {}}', b'{"HtmlBody": [1]}'])
def test_inbound_mail_that_cannot_be_read_is_refused_with_400_and_makes_no_case(client, body):
    assert post(client, "postmark_inbound_webhook", body).status_code == 400
    assert not InboundMessage.objects.exists()


def test_a_delivery_report_posted_to_the_inbound_address_is_refused_with_400(client):
    body = json.dumps({"RecordType": "Delivery", "MessageID": "pm-1", "Recipient": "a@example.com"})

    assert post(client, "postmark_inbound_webhook", body).status_code == 400


@pytest.mark.parametrize("message_id", [1, ["x" * 300], {"id": "x"}, None, True])
def test_inbound_mail_whose_message_id_is_not_text_is_still_taken(client, message_id):
    body = json.dumps({"From": "ada@example.com", "FromFull": {"Email": "ada@example.com", "Name": "Ada"},
                       "To": "support@backstop.localhost", "Subject": "Hello", "TextBody": "Hi",
                       "MessageID": message_id, "Headers": []})

    response = post(client, "postmark_inbound_webhook", body)

    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert message.subject == "Hello"
    assert len(message.message_id) <= 255


@pytest.mark.parametrize("field", ["ReplyTo", "Subject", "FromName", "TextBody", "MessageID"])
def test_inbound_mail_carrying_a_nul_character_is_stored_without_it(client, field):
    fields = {"From": "ada@example.com", "FromFull": {"Email": "ada@example.com", "Name": "Ada"},
              "To": "support@backstop.localhost", "Subject": "Hello", "TextBody": "Hi", "FromName": "Ada",
              "MessageID": "m-1", "Headers": []}
    body = json.dumps({**fields, field: f"a\x00{fields.get(field, 'b@example.com')}"})

    response = post(client, "postmark_inbound_webhook", body)

    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert "\x00" not in message.subject + message.body + message.from_name + message.message_id + message.sender_check


@pytest.mark.parametrize("description", ["Mailbox \x00 full", "x" * 10_000])
def test_a_bounce_whose_description_carries_a_nul_or_is_long_is_recorded(client, description):
    order = OrderFactory()
    OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                 status=OutboundEmail.Status.SENT, esp_message_id="pm-123")
    body = json.dumps({"RecordType": "Bounce", "MessageID": "pm-123", "Type": "HardBounce", "Email": order.email,
                       "Description": description, "BouncedAt": "2026-11-26T10:00:00Z", "ID": 42})

    response = post(client, "postmark_tracking_webhook", body)

    assert response.status_code == 200
    assert order.events.filter(reason__startswith="Email bounced").exists()


@pytest.mark.parametrize("message_id", ["\x00", "pm-\x00123", ["pm-123"], 123])
def test_a_delivery_report_whose_message_id_is_not_plain_text_matches_no_email(client, message_id):
    order = OrderFactory()
    email = OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                         status=OutboundEmail.Status.SENT, esp_message_id="pm-123")
    body = json.dumps({"RecordType": "Delivery", "MessageID": message_id, "Recipient": order.email,
                       "DeliveredAt": "2026-11-26T10:00:00Z"})

    response = post(client, "postmark_tracking_webhook", body)

    assert response.status_code == 200
    email.refresh_from_db()
    assert email.esp_status == ""
