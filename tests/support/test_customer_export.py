"""`manage.py customer_export EMAIL` and the console's Export: everything held about one person."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from billing import services
from support.models import InboundMessage
from tests.billing.helpers import paid_order
from tests.factories import PlanFactory, UserFactory


def export(email: str) -> dict:
    out = StringIO()
    call_command("customer_export", email, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def ada(stripe_emulator):
    """Ada has an account, a paid and partly refunded order, emails, and wrote to support."""
    PlanFactory()
    UserFactory(email="ada@example.com", full_name="Ada Lovelace", company_name="Engines Ltd", vat_number="GB123")
    order = paid_order(email="ada@example.com", full_name="Ada Lovelace")
    order = services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    services.order_refund(order_id=order.id, actor="support:amy@backstop.localhost", reason="Asked for some back",
                          amount_cents=1000)
    message = InboundMessage.objects.create(message_id="pm-1", from_email="ada@example.com", from_name="Ada",
                                            subject="Receipt please", body="Could you send my receipt?")
    message.orders.add(order)
    order.refresh_from_db()
    return order


@pytest.mark.django_db
def test_the_export_holds_the_account_orders_payments_refunds_emails_events_and_support_mail(ada):
    document = export("Ada@Example.com")

    assert document["email"] == "ada@example.com"
    assert document["account"]["company_name"] == "Engines Ltd"
    assert [e["order"] for e in document["entitlements"]] == [ada.reference]
    [order] = document["orders"]
    assert order["reference"] == ada.reference
    assert order["payment"]["stripe_payment_intent"] == ada.stripe_payment_intent_id
    assert order["payment"]["card_last4"] == "4242"
    assert [r["amount_cents"] for r in order["refunds"]] == [1000]
    assert {"payment_set_up", "access_granted"} <= {event["kind"] for event in order["events"]}
    assert "confirmation" in {email["kind"] for email in document["emails_sent"]}
    assert document["stripe_customers"] == []  # her one purchase, the address's first, made none (0034)
    assert [m["body"] for m in document["support_mail"]] == ["Could you send my receipt?"]


@pytest.mark.django_db
def test_the_export_names_the_stripe_customer_of_an_address_that_came_back(ada):
    later = paid_order(email="ada@example.com")
    later.refresh_from_db()

    document = export("ada@example.com")

    assert later.stripe_customer_id.startswith("cus_")
    assert document["stripe_customers"] == [later.stripe_customer_id]


@pytest.mark.django_db
def test_an_unknown_address_is_refused_in_one_line():
    with pytest.raises(CommandError, match=r"Nothing is held about nobody@example\.com"):
        call_command("customer_export", "nobody@example.com", stdout=StringIO())


@pytest.mark.django_db
def test_the_console_downloads_the_export_for_someone_with_the_permission(ada, console):
    User.objects.get(email="ana@backstop.localhost").user_permissions.add(
        Permission.objects.get(codename="export_customer"))
    response = console.post(reverse("admin:billing_order_changelist"),
                            {"action": "export_customer_data", "_selected_action": [ada.id]})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content)["orders"][0]["reference"] == ada.reference


@pytest.mark.django_db
def test_the_console_offers_no_export_without_the_permission(ada, console):
    response = console.post(reverse("admin:billing_order_changelist"),
                            {"action": "export_customer_data", "_selected_action": [ada.id]})

    assert "Content-Disposition" not in response
