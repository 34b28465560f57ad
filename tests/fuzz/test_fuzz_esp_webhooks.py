"""The email provider's webhooks (anymail's Postmark tracking, and support's inbound mail), fed
records of any shape, with and without the shared secret (HTTP basic auth)."""

import base64
import copy
import json

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from billing.models import OrderEvent
from outbox.models import OutboundEmail
from support.models import InboundMessage
from tests.factories import OrderFactory
from tests.fuzz.conftest import assert_clean_answer, browser
from tests.fuzz.strategies import any_text, hostile_text, json_values

pytestmark = pytest.mark.django_db

GOOD_AUTH = "Basic " + base64.b64encode(b"esp:hook-secret").decode()
auth_headers = st.one_of(
    st.none(), hostile_text.map(lambda text: f"Basic {text}"),
    hostile_text.map(lambda text: "Basic " + base64.b64encode(text.encode()).decode()),
    st.just("Basic " + base64.b64encode(b"esp:wrong").decode()), st.just("Bearer hook-secret"))

DELIVERY = {"RecordType": "Delivery", "MessageID": "pm-123", "Recipient": "buyer@example.com",
            "DeliveredAt": "2026-11-26T10:00:00Z", "ServerID": 1, "MessageStream": "outbound", "Tag": "",
            "Details": "", "Metadata": {}}
BOUNCE = {"RecordType": "Bounce", "MessageID": "pm-123", "Type": "HardBounce", "Email": "buyer@example.com",
          "Description": "Mailbox does not exist", "BouncedAt": "2026-11-26T10:00:00Z", "ID": 42, "TypeCode": 1,
          "Details": "smtp;550", "Inactive": True, "CanActivate": True, "Subject": "Your order", "Metadata": {}}
INBOUND = {
    "FromName": "Ada", "MessageStream": "inbound", "From": "ada@example.com",
    "FromFull": {"Email": "ada@example.com", "Name": "Ada", "MailboxHash": ""}, "To": "support@backstop.localhost",
    "ToFull": [{"Email": "support@backstop.localhost", "Name": "", "MailboxHash": ""}], "Cc": "", "CcFull": [],
    "Bcc": "", "BccFull": [], "OriginalRecipient": "support@backstop.localhost", "Subject": "Charged twice?",
    "MessageID": "73e6d360-66eb-11e1-8e72-a89048", "ReplyTo": "", "MailboxHash": "",
    "Date": "Thu, 26 Nov 2026 14:05:32 +0000", "TextBody": "Hello", "HtmlBody": "<p>Hello</p>",
    "StrippedTextReply": "", "Tag": "", "Attachments": [],
    "Headers": [{"Name": "Return-Path", "Value": "<ada@example.com>"},
                {"Name": "Received-SPF", "Value": "Pass identity=mailfrom; envelope-from=ada@example.com"}],
}


def mutated(record):
    """The record with one field given any JSON value, or removed, or the whole body replaced."""
    def change(key, value, delete):
        record_ = copy.deepcopy(record)
        if delete:
            record_.pop(key, None)
        else:
            record_[key] = value
        return record_

    return st.one_of(
        st.builds(change, st.sampled_from(sorted(record)), json_values, st.booleans()),
        st.builds(change, st.sampled_from(sorted(record)), hostile_text, st.just(False)),
        json_values, st.lists(st.just(record), min_size=2, max_size=2))


@pytest.fixture
def sent_email(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-secret"}
    order = OrderFactory(email="buyer@example.com")
    return OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                        status=OutboundEmail.Status.SENT, esp_message_id="pm-123")


def post(url, body: bytes, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return browser().post(url, data=body, content_type="application/json", **headers)


def outbox():
    return list(OutboundEmail.objects.values_list("id", "status")), OutboundEmail.objects.count()


@given(record=st.one_of(mutated(DELIVERY), mutated(BOUNCE)))
def test_a_delivery_report_of_any_shape_gets_a_clear_answer_and_adds_no_email(sent_email, record):
    before = outbox()

    response = assert_clean_answer(post(reverse("anymail:postmark_tracking_webhook"), json.dumps(record).encode(),
                                        GOOD_AUTH))

    assert response.status_code in (200, 400)
    assert outbox() == before  # a report may change esp_status, never add or resend an email


@given(fields=st.fixed_dictionaries({}, optional={name: hostile_text for name in (
    "Description", "Details", "Email", "Type", "Subject", "BouncedAt", "MessageID", "Tag")}))
def test_a_bounce_with_any_text_in_its_fields_gets_a_clear_answer_and_adds_no_email(sent_email, fields):
    before = outbox()

    response = assert_clean_answer(post(reverse("anymail:postmark_tracking_webhook"),
                                        json.dumps({**BOUNCE, **fields}).encode(), GOOD_AUTH))

    assert response.status_code in (200, 400)
    assert outbox() == before


@given(body=st.one_of(st.binary(max_size=500), any_text.map(str.encode)))
def test_a_delivery_report_that_is_not_json_is_refused(sent_email, body):
    response = assert_clean_answer(post(reverse("anymail:postmark_tracking_webhook"), body, GOOD_AUTH))

    assert response.status_code == 400


@given(record=st.sampled_from([DELIVERY, BOUNCE]), authorization=auth_headers)
def test_a_delivery_report_without_the_secret_changes_nothing(sent_email, record, authorization):
    events = OrderEvent.objects.count()

    response = assert_clean_answer(post(reverse("anymail:postmark_tracking_webhook"), json.dumps(record).encode(),
                                        authorization))

    assert 400 <= response.status_code < 500
    sent_email.refresh_from_db()
    assert sent_email.esp_status == ""
    assert OrderEvent.objects.count() == events


@given(payload=mutated(INBOUND))
def test_inbound_mail_of_any_shape_gets_a_clear_answer_and_makes_at_most_one_case(
    sent_email, django_capture_on_commit_callbacks, payload
):
    before = InboundMessage.objects.count()

    with django_capture_on_commit_callbacks(execute=True):  # and the matching task, as the worker runs it
        response = assert_clean_answer(post(reverse("anymail:postmark_inbound_webhook"),
                                            json.dumps(payload).encode(), GOOD_AUTH), sent=payload)

    assert response.status_code in (200, 400)
    assert InboundMessage.objects.count() - before in ((0, 1) if response.status_code == 200 else (0,))
    InboundMessage.objects.all().delete()  # the next example may reuse the same Message-ID


@given(body=st.one_of(st.binary(max_size=500), any_text.map(str.encode)))
def test_inbound_mail_that_is_not_json_is_refused(sent_email, body):
    response = assert_clean_answer(post(reverse("anymail:postmark_inbound_webhook"), body, GOOD_AUTH))

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


@given(authorization=auth_headers)
def test_inbound_mail_without_the_secret_makes_no_case(sent_email, authorization):
    response = assert_clean_answer(post(reverse("anymail:postmark_inbound_webhook"), json.dumps(INBOUND).encode(),
                                        authorization))

    assert 400 <= response.status_code < 500
    assert not InboundMessage.objects.exists()
