"""`manage.py setup_plan`: the first plan on sale (and a later price change) from one command."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import Plan
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def setup_plan(*args) -> str:
    out = StringIO()
    call_command("setup_plan", *args, stdout=out)
    return out.getvalue()


def test_the_first_plan_is_put_on_sale_and_checkout_offers_it(client):
    out = setup_plan("pro", "--name", "Pro", "--amount", "99.00", "--currency", "eur", "--months", "6")

    plan = Plan.objects.get(code="pro")
    assert (plan.name, plan.amount_cents, plan.currency, plan.duration_months, plan.is_active) == (
        "Pro", 9900, "eur", 6, True)
    assert out == "Plan pro created: Pro, €99.00 for 6 months, on sale.\n"
    assert "Pro plan" in client.get(reverse("billing:checkout")).content.decode()


def test_running_it_again_changes_the_price_of_future_checkouts_only():
    setup_plan("annual", "--name", "Annual", "--amount", "249", "--currency", "usd", "--months", "12")
    order = OrderFactory(plan=Plan.objects.get(code="annual"))

    out = setup_plan("annual", "--name", "Annual", "--amount", "199.00", "--currency", "usd", "--months", "12")

    order.refresh_from_db()
    assert Plan.objects.get(code="annual").amount_cents == 19900
    assert order.amount_cents == 24900
    assert out == "Plan annual updated: Annual, $199.00 for 12 months, on sale.\n"


def test_a_zero_decimal_currency_takes_whole_units():
    setup_plan("annual-jpy", "--name", "Annual", "--amount", "30000", "--currency", "JPY", "--months", "12")

    assert (Plan.objects.get(code="annual-jpy").amount_cents, Plan.objects.get(code="annual-jpy").currency) == (
        30000, "jpy")


def test_off_sale_keeps_the_plan_for_its_orders_but_stops_selling_it():
    setup_plan("annual", "--name", "Annual", "--amount", "249", "--currency", "usd", "--months", "12")

    out = setup_plan("annual", "--name", "Annual", "--amount", "249", "--currency", "usd", "--months", "12",
                     "--off-sale")

    assert Plan.objects.get(code="annual").is_active is False
    assert out.endswith("off sale.\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--amount", "249.001"], "--amount 249.001 has more decimals than usd allows (2)."),
    (["--amount", "12 dollars"], "--amount takes a number such as 249.00, not '12 dollars'."),
    (["--amount", "0.20"], "--amount 0.20 is below Stripe's minimum charge (0.50)."),
    (["--currency", "dollars"], "--currency takes a three-letter ISO code such as usd or eur, not 'dollars'."),
    (["--months", "0"], "--months must be at least 1, not 0."),
    (["--code", "Annual plan!"], "'Annual plan!' is not a plan code: use lower-case letters, digits and hyphens."),
])
def test_bad_input_is_refused_with_a_message_naming_the_option(args, message):
    values = {"--code": "annual", "--name": "Annual", "--amount": "249.00", "--currency": "usd", "--months": "12"}
    values.update(dict(zip(args[::2], args[1::2], strict=True)))
    code = values.pop("--code")

    with pytest.raises(CommandError) as error:
        setup_plan(code, *[item for pair in values.items() for item in pair])

    assert str(error.value) == message
    assert not Plan.objects.exists()
