"""Backstop runs on a restricted key holding exactly the permissions docs/deploy/stripe.md lists:
checkout, settle, a refund, the sweep, erasure, the statement prefix and the webhook endpoint."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from billing import services, stripe_api
from billing.errors import PaymentSetupFailed
from billing.mirror import stripe_mirror_sync
from billing.models import OrderState
from billing.services.erasure import customer_erase
from billing.statement import statement_prefix_refresh
from tests.billing.helpers import order_with_payment_intent, pay
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "stripe.md"
KEY = "rk_test_" + "B" * 30
# The Dashboard's names for the resources, as the emulator names their permissions.
RESOURCES = {"Customers": "customer", "PaymentIntents": "payment_intent", "Charges": "charge",
             "Refunds": "refund", "Disputes": "dispute", "Balance": "balance",
             "PaymentMethods": "payment_method", "Webhook Endpoints": "webhook", "Account": "account"}


def documented_permissions() -> dict[str, str]:
    rows = re.findall(r"^\| ([A-Za-z ]+?) \| (Read|Write) \|", DOC.read_text(), re.MULTILINE)
    return {RESOURCES[name]: level.lower() for name, level in rows}


@pytest.fixture
def restricted_key(stripe_emulator, emulator_control, settings):
    emulator_control.add_restricted_key(KEY, documented_permissions())
    settings.STRIPE_SECRET_KEY = KEY  # billing's Stripe door and dj-stripe's mirror
    stripe_api._client.cache_clear()
    yield KEY
    stripe_api._client.cache_clear()


def test_the_documented_permissions_are_read_from_the_table():
    assert documented_permissions()["payment_intent"] == "write"
    assert len(documented_permissions()) == len(RESOURCES)


def test_a_purchase_is_paid_settled_and_mirrored_on_the_restricted_key(restricted_key):
    order = order_with_payment_intent()
    pay(order)  # the customer's browser, with the publishable key

    order = services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    result = stripe_mirror_sync(since=0)

    assert order.state == OrderState.ACTIVE
    assert result.errors == []


def test_a_refund_and_the_sweep_after_it_work_on_the_restricted_key(restricted_key):
    order = order_with_payment_intent()
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")

    order = services.order_refund(order_id=order.id, actor="support:ana", reason="asked")
    result = stripe_mirror_sync(since=0)

    assert order.state in (OrderState.REFUNDED, OrderState.REFUND_PENDING)
    assert result.errors == []


def test_erasure_works_on_the_restricted_key(restricted_key):
    order = order_with_payment_intent(email="edsger@example.com")
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    services.order_refund(order_id=order.id, actor="support:ana", reason="before erasure")

    customer_erase(email="edsger@example.com", actor="support:ana")


def test_the_statement_prefix_and_the_webhook_endpoint_work_on_the_restricted_key(restricted_key):
    assert statement_prefix_refresh() == "BACKSTOP"

    call_command("stripe_webhook_endpoint", create=True, stdout=StringIO(), stderr=StringIO())


def test_without_a_documented_permission_the_purchase_fails_as_stripe_would_refuse_it(
        stripe_emulator, emulator_control, settings):
    permissions = documented_permissions()
    del permissions["customer"]
    emulator_control.add_restricted_key(KEY, permissions)
    settings.STRIPE_SECRET_KEY = KEY
    stripe_api._client.cache_clear()

    OrderFactory(email="ada@example.com")  # the address ordered before: this order makes its Customer (0034)
    with pytest.raises(PaymentSetupFailed, match="rak_customer_write"):
        order_with_payment_intent(email="ada@example.com")
    stripe_api._client.cache_clear()
