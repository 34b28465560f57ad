"""The statement prefix is the Stripe account's own (its settings, GET /v1/account), read through
billing's Stripe door and kept for a day: support finds an order from the bank statement line
whatever the prefix is."""

from io import StringIO

import pytest
import stripe
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from billing.statement import CACHE_KEY, statement_prefix
from support.selectors.inbound import inbound_tokens
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_prefix_known_yet():
    cache.delete(CACHE_KEY)


@pytest.fixture
def acme(emulator_control):
    emulator_control.set_statement_prefix("ACME")
    return "ACME"


def search(console, q):
    return console.get(reverse("admin:index"), {"q": q}).content.decode()


def account_reads(emulator_control):
    return sum(r["count"] for r in emulator_control.state()["requests"]
               if (r["method"], r["path"]) == ("GET", "/v1/account"))


def code_of(order):
    return order.reference.replace("BK-", "").replace("-", "")


def test_the_prefix_is_the_one_in_the_stripe_accounts_settings(acme):
    assert statement_prefix() == "ACME"


def test_the_prefix_is_read_from_stripe_once_and_then_kept(acme, emulator_control):
    before = account_reads(emulator_control)

    statement_prefix()
    statement_prefix()

    assert account_reads(emulator_control) - before == 1


def test_a_prefix_changed_in_stripes_dashboard_is_read_again_by_the_command(acme, emulator_control):
    statement_prefix()
    emulator_control.set_statement_prefix("NEWCO")
    out = StringIO()

    call_command("stripe_statement_prefix", stdout=out)

    assert statement_prefix() == "NEWCO"
    assert "NEWCO" in out.getvalue()


def test_search_finds_an_order_by_its_statement_line_with_the_accounts_prefix(console, acme):
    order = OrderFactory()

    assert order.reference in search(console, f"acme {code_of(order)}")


def test_the_statement_line_stripe_printed_for_a_payment_finds_its_order(console, acme):
    order = paid_order()
    line = stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data[0].calculated_statement_descriptor

    assert line.startswith("ACME* ")
    assert order.reference in search(console, line)


def test_with_stripe_unreachable_a_statement_line_with_its_star_is_still_found(console, acme, emulator_control):
    emulator_control.fail_next(method="GET", path="/v1/account", count=10)
    order = OrderFactory()

    assert order.reference in search(console, f"ACME* {code_of(order)}")


def test_the_search_help_shows_the_accounts_prefix_once_read(console, acme):
    statement_prefix()

    page = search(console, "")

    assert "(ACME* 7F3K9QX2)" in page
    assert "BACKSTOP*" not in page


def test_a_support_email_quoting_the_statement_line_points_to_its_order(acme):
    tokens = inbound_tokens(subject="Refund", text="My statement says ACME* 7F3K9QX2, what is it?")

    assert tokens.references == {"BK-7F3K-9QX2"}


def test_a_support_email_quoting_the_line_without_its_star_points_to_its_order_once_the_prefix_is_known(acme):
    statement_prefix()

    tokens = inbound_tokens(subject="Refund", text="My statement says acme 7F3K9QX2, what is it?")

    assert tokens.references == {"BK-7F3K-9QX2"}
