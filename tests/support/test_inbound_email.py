"""Support email through the ESP's inbound webhook (Postmark's JSON, as Postmark posts it)
becomes a case: matched to orders, fixed where Backstop can, with a reply drafted."""

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from billing import services
from billing.mirror import stripe_mirror_sync
from billing.models import OrderState
from support.models import InboundMessage
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def postmark_inbound(client, *, sender="ada@example.com", name="Ada Lovelace", subject="Charged but no account",
                     text="Hi, I paid yesterday and never got anything.", message_id="73e6d360-66eb-11e1-8e72-a89048"):
    payload = {
        "FromName": name, "MessageStream": "inbound", "From": sender,
        "FromFull": {"Email": sender, "Name": name, "MailboxHash": ""},
        "To": "support@backstop.localhost",
        "ToFull": [{"Email": "support@backstop.localhost", "Name": "", "MailboxHash": ""}],
        "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": "support@backstop.localhost",
        "Subject": subject, "MessageID": message_id, "ReplyTo": "", "MailboxHash": "",
        "Date": "Thu, 26 Nov 2026 14:05:32 +0000", "TextBody": text, "HtmlBody": f"<p>{text}</p>",
        "StrippedTextReply": "", "Tag": "", "Headers": [{"Name": "X-Spam-Status", "Value": "No"}],
        "Attachments": [],
    }
    auth = base64.b64encode(b"esp:hook-secret").decode()
    return client.post(reverse("anymail:postmark_inbound_webhook"), data=json.dumps(payload),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}")


def test_an_email_from_a_charged_customer_finishes_their_order_and_drafts_the_reply(client, stripe_emulator):
    order = paid_order(email="ada@example.com", full_name="Ada Lovelace")  # charged, never finished

    response = postmark_inbound(client)

    assert response.status_code == 200
    message = InboundMessage.objects.get()
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert list(message.orders.all()) == [order]
    assert order.reference in message.done_automatically
    assert "Your payment of $249.00" in message.draft_body
    assert message.status == InboundMessage.Status.OPEN  # a person sends the reply


def test_an_email_from_another_address_is_matched_by_the_reference_it_quotes(client):
    order = OrderFactory(email="ada@example.com")

    postmark_inbound(client, sender="ada.work@example.org", text=f"My order {order.reference} is stuck.")

    assert list(InboundMessage.objects.get().orders.all()) == [order]


def test_an_email_is_matched_by_card_last_four_and_amount_before_the_order_knows_the_card(
    client, stripe_emulator
):
    order = paid_order(email="ada@example.com")
    stripe_mirror_sync()

    postmark_inbound(client, sender="someone.else@example.org",
                     text="I see a charge of $249.00 on my card ending in 4242 and nothing else.")

    assert order in InboundMessage.objects.get().orders.all()


def test_an_email_that_matches_nothing_drafts_the_ask_for_details_reply(client):
    postmark_inbound(client, sender="stranger@example.org", name="Sam")

    message = InboundMessage.objects.get()
    assert "No order or payment matches" in message.diagnosis
    assert "last 4 digits" in message.draft_body


def test_the_provider_retrying_the_same_email_makes_one_case(client):
    postmark_inbound(client)
    postmark_inbound(client)

    assert InboundMessage.objects.count() == 1


def test_an_open_support_email_is_in_the_console_queue(client):
    postmark_inbound(client, sender="sam@example.org", subject="Where is my receipt?")
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")

    page = client.get(reverse("admin:index")).content.decode()

    assert "Email from sam@example.org: Where is my receipt?" in page


def test_an_inbound_email_without_the_webhook_secret_is_refused(client):
    response = client.post(reverse("anymail:postmark_inbound_webhook"), data="{}", content_type="application/json")

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


def test_an_active_customer_asking_gets_a_resend_draft(client, stripe_emulator):
    services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="webhook")

    postmark_inbound(client, text="I never got my confirmation email.")

    assert "sent your confirmation for order" in InboundMessage.objects.get().draft_body
