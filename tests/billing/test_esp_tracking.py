import base64
import json

import pytest
from django.urls import reverse

from outbox.models import OutboundEmail
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def post_postmark(client, record):
    auth = base64.b64encode(b"esp:hook-secret").decode()
    return client.post(reverse("anymail:postmark_tracking_webhook"), data=json.dumps(record),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}")


@pytest.fixture
def sent_email(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-secret"}
    order = OrderFactory()
    return OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                        status=OutboundEmail.Status.SENT, esp_message_id="pm-123")


def test_a_delivery_report_from_the_esp_is_recorded_on_the_email(client, sent_email):
    response = post_postmark(client, {"RecordType": "Delivery", "MessageID": "pm-123",
                                      "Recipient": sent_email.recipient, "DeliveredAt": "2026-11-26T10:00:00Z"})

    assert response.status_code == 200
    sent_email.refresh_from_db()
    assert sent_email.esp_status == "delivered"


def test_a_bounce_is_written_on_the_order_timeline(client, sent_email):
    post_postmark(client, {"RecordType": "Bounce", "MessageID": "pm-123", "Type": "HardBounce",
                           "Email": sent_email.recipient, "Description": "Mailbox does not exist",
                           "BouncedAt": "2026-11-26T10:00:00Z", "ID": 42})

    assert sent_email.about.events.filter(reason__startswith="Email bounced").exists()


def test_another_providers_webhook_is_not_accepted(client):
    response = client.post("/anymail/mailgun/tracking/", data="{}", content_type="application/json")

    assert response.status_code == 404


def test_without_a_shared_secret_no_esp_webhook_is_routed(settings):
    from config.urls import esp_webhook_urls

    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": None}

    patterns, _namespace = esp_webhook_urls()

    assert patterns == []


def test_a_delivery_report_without_the_secret_is_refused(client, sent_email):
    response = client.post(reverse("anymail:postmark_tracking_webhook"), data=json.dumps(
        {"RecordType": "Delivery", "MessageID": "pm-123"}), content_type="application/json")

    assert response.status_code == 400
    sent_email.refresh_from_db()
    assert sent_email.esp_status == ""
