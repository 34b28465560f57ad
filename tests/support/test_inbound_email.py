"""Support email through the ESP's inbound webhook (Postmark's JSON, as Postmark posts it)
becomes a case: matched to orders, fixed where Backstop can, with a reply drafted."""

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from billing.mirror import stripe_mirror_sync
from billing.models import OrderState
from billing.tokens import order_status_token
from support import selectors, tasks
from support.models import InboundMessage
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def postmark_inbound(client, *, sender="ada@example.com", name="Ada Lovelace", subject="Charged but no account",
                     text="Hi, I paid yesterday and never got anything.", message_id="73e6d360-66eb-11e1-8e72-a89048",
                     envelope=None, spf="Pass", reply_to=""):
    """Post an inbound email as Postmark does: it prepends the envelope sender as Return-Path and
    adds its SPF verdict on that envelope as Received-SPF (by default, a real sender's pass)."""
    envelope = sender if envelope is None else envelope
    headers = [{"Name": "Return-Path", "Value": f"<{envelope}>"}] if envelope else []
    headers += [{"Name": "X-Spam-Status", "Value": "No"}]
    if spf:
        headers += [{"Name": "Received-SPF", "Value": f"{spf} (sender SPF authorized) identity=mailfrom; "
                                                        f"envelope-from={envelope}"}]
    payload = {
        "FromName": name, "MessageStream": "inbound", "From": sender,
        "FromFull": {"Email": sender, "Name": name, "MailboxHash": ""},
        "To": "support@backstop.localhost",
        "ToFull": [{"Email": "support@backstop.localhost", "Name": "", "MailboxHash": ""}],
        "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": "support@backstop.localhost",
        "Subject": subject, "MessageID": message_id, "ReplyTo": reply_to, "MailboxHash": "",
        "Date": "Thu, 26 Nov 2026 14:05:32 +0000", "TextBody": text, "HtmlBody": f"<p>{text}</p>",
        "StrippedTextReply": "", "Tag": "", "Headers": headers,
        "Attachments": [],
    }
    auth = base64.b64encode(b"esp:hook-secret").decode()
    return client.post(reverse("anymail:postmark_inbound_webhook"), data=json.dumps(payload),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}")


@pytest.fixture
def mail(client, django_capture_on_commit_callbacks):
    """Deliver an inbound email and let the matching task run, as the worker would after the commit."""

    def deliver(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = postmark_inbound(client, **fields)
        assert response.status_code == 200
        return InboundMessage.objects.get(message_id=fields.get("message_id", "73e6d360-66eb-11e1-8e72-a89048"))

    return deliver


def assert_no_details_of(order, draft: str):
    for detail in (order.full_name.split()[0], order.full_name, order.email, order.plan.name, order.reference,
                   order.paid_display, "/orders/status/", "Refund"):
        assert detail not in draft, detail


def test_an_email_from_a_charged_customer_finishes_their_order_and_drafts_the_reply(mail, stripe_emulator):
    order = paid_order(email="ada@example.com", full_name="Ada Lovelace")  # charged, never finished

    message = mail()

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert list(message.orders.all()) == [order]
    assert order.reference in message.done_automatically
    assert "Your payment of $249.00" in message.draft_body
    assert message.status == InboundMessage.Status.OPEN  # a person sends the reply


def test_the_owners_address_typed_in_other_capitals_gets_the_full_draft(mail):
    order = OrderFactory(email="ada@example.com", full_name="Ada Lovelace", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="Ada@Example.COM")

    assert "Hello Ada," in message.draft_body
    assert order_status_token(order) in message.draft_body
    assert not message.diagnosis.startswith("Unverified sender")


def test_a_stranger_mentioning_only_a_card_last_four_is_linked_to_no_order(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", card_last4="4444",
                         state=OrderState.NEEDS_REVIEW)

    message = mail(sender="stranger@example.org", name="Sam", text="I paid with my card ending in 4444")

    assert not message.orders.exists()
    assert_no_details_of(order, message.draft_body)


def test_a_stranger_quoting_a_reference_gets_the_unverified_sender_draft(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="stranger@example.org", name="Grace Hopper", text=f"My order {order.reference} is stuck.")

    assert message.diagnosis.startswith("Unverified sender")
    assert list(message.orders.all()) == [order]  # for support to see, in the console only
    assert "write to us again from that address, or use Find my order" in message.draft_body
    assert_no_details_of(order, message.draft_body)


def test_a_stranger_quoting_the_statement_code_of_a_held_order_gets_no_status_link(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)
    code = order.reference.removeprefix("BK-").replace("-", "")

    message = mail(sender="stranger@example.org", text=f"My statement says BACKSTOP* {code}, refund it")

    assert list(message.orders.all()) == [order]
    assert message.diagnosis.startswith("Unverified sender")
    assert order_status_token(order) not in message.draft_body
    assert_no_details_of(order, message.draft_body)


def test_the_owners_address_with_a_failing_spf_check_gets_no_details(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="grace@example.com", envelope="bounce@attacker.example", spf="Fail")

    assert message.diagnosis.startswith("Unverified sender")
    assert "could not confirm" in message.diagnosis
    assert_no_details_of(order, message.draft_body)


def test_the_owners_address_without_an_spf_verdict_gets_no_details(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="grace@example.com", spf="")

    assert not message.sender_authenticated
    assert_no_details_of(order, message.draft_body)


def test_the_owners_address_with_an_envelope_on_another_domain_gets_no_details(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="grace@example.com", envelope="mailer@attacker.example")  # its SPF passes, for its own

    assert "not on the From's domain" in message.sender_check
    assert_no_details_of(order, message.draft_body)


def test_the_owners_address_with_a_reply_to_elsewhere_gets_no_details(mail):
    order = OrderFactory(email="grace@example.com", full_name="Grace Hopper", state=OrderState.NEEDS_REVIEW)

    message = mail(sender="grace@example.com", reply_to="collect@attacker.example")

    assert "Reply-To" in message.sender_check
    assert_no_details_of(order, message.draft_body)


def test_an_envelope_on_a_subdomain_of_the_from_domain_is_accepted(mail):
    OrderFactory(email="grace@example.com", full_name="Grace Hopper")

    message = mail(sender="grace@example.com", envelope="bounces+123@mail.example.com")

    assert message.sender_authenticated
    assert "Hello Grace," in message.draft_body


def test_a_card_last_four_and_amount_from_someone_else_link_no_order(mail, stripe_emulator):
    order = paid_order(email="ada@example.com")
    stripe_mirror_sync()

    message = mail(sender="someone.else@example.org",
                   text="I see a charge of $249.00 on my card ending in 4242 and nothing else.")

    assert order not in message.orders.all()  # shared by thousands of cards: see test_inbound_strong_evidence.py


def test_an_email_that_matches_nothing_drafts_the_ask_for_details_reply(mail):
    message = mail(sender="stranger@example.org", name="Sam")

    assert "No order or payment matches" in message.diagnosis
    assert "last 4 digits" in message.draft_body


def test_the_webhook_stores_the_email_and_leaves_the_matching_to_the_worker(client):
    order = OrderFactory(email="ada@example.com")

    response = postmark_inbound(client)  # the commit, and so the task, has not happened yet

    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert message.matched_at is None
    tasks.match_inbound_message(message.id)
    assert list(message.orders.all()) == [order]


def test_a_redelivered_matching_task_changes_nothing(mail):
    message = mail(sender="stranger@example.org")
    InboundMessage.objects.filter(pk=message.pk).update(draft_body="edited by a person")

    tasks.match_inbound_message(message.id)

    assert InboundMessage.objects.get(pk=message.pk).draft_body == "edited by a person"


def test_a_1_mb_email_is_answered_stored_bounded_and_matched_by_the_task(mail):
    order = OrderFactory(email="ada@example.com")

    message = mail(sender="stranger@example.org", text=f"My order {order.reference}. " + "x" * 1_000_000)

    assert len(message.body) == selectors.INBOUND_SCAN_LIMIT
    assert message.matched_at is not None
    assert list(message.orders.all()) == [order]


def test_the_matching_reads_only_the_first_20000_characters_of_the_body():
    late = "a" * selectors.INBOUND_SCAN_LIMIT + " BK-7Q2M-Q0D4"

    assert selectors.inbound_tokens(subject="", text=late).references == frozenset()


def test_the_matching_reads_the_subject_whatever_the_length_of_the_body():
    tokens = selectors.inbound_tokens(subject="About BK-7Q2M-Q0D4", text="x" * 1_000_000)

    assert tokens.references == {"BK-7Q2M-Q0D4"}


def test_a_masked_card_number_still_gives_its_last_four():
    tokens = selectors.inbound_tokens(subject="", text="charged $249.00 on XXXX-XXXX-XXXX-4242")

    assert tokens.last4s == {"4242"}


def test_the_provider_retrying_the_same_email_makes_one_case(mail):
    mail()
    mail()

    assert InboundMessage.objects.count() == 1


def test_an_open_support_email_is_in_the_console_queue(client, mail):
    mail(sender="sam@example.org", subject="Where is my receipt?")
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")

    page = client.get(reverse("admin:index")).content.decode()

    assert "Email from sam@example.org: Where is my receipt?" in page


def test_an_inbound_email_without_the_webhook_secret_is_refused(client):
    response = client.post(reverse("anymail:postmark_inbound_webhook"), data="{}", content_type="application/json")

    assert response.status_code == 400
    assert not InboundMessage.objects.exists()
