"""Search as customers speak (issue 15, item 7): an amount as the bank statement prints it, a day,
or both, across our orders and the Stripe mirror; days are read in SUPPORT_TIME_ZONE."""

from datetime import UTC, date, datetime, timedelta

import pytest
import stripe
from django.urls import reverse
from djstripe.models import Charge

from billing import services
from billing.mirror import stripe_mirror_sync
from billing.models import Order
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def search(console, q):
    page = console.get(reverse("admin:index"), {"q": q}).content.decode()
    return page.split('id="search-results"')[1].split("</ul>")[0]


def charge_without_order(cents):
    payment = stripe.PaymentIntent.create(amount=cents, currency="usd", confirm=True, payment_method="pm_card_visa",
                                          payment_method_types=["card"])
    return payment.latest_charge


def held_for_248(email="bo@example.com"):
    """Stripe took $248.00 for an order that asked $249.00."""
    order = paid_order(email=email, amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    return services.order_settle(order_id=order.id, actor="webhook")


def created_on(order, moment):
    Order.objects.filter(pk=order.pk).update(created_at=moment)
    return order


# --- amounts ---------------------------------------------------------------------------------


def test_the_amount_on_the_bank_statement_finds_the_mirrored_charges_that_have_no_order(console, stripe_emulator):
    charges = [charge_without_order(24800), charge_without_order(24800)]
    other = charge_without_order(24900)
    stripe_mirror_sync()

    results = search(console, "$248.00")

    assert all(charge in results for charge in charges)
    assert results.count("no order") == 2
    assert other not in results


@pytest.mark.parametrize("spelling", ["$248.00", "248.00", "248", "248,00", "$248", "USD 248.00", "248.00 USD"])
def test_an_amount_finds_an_order_by_what_stripe_took_when_the_order_asked_another(console, stripe_emulator, spelling):
    order = held_for_248()

    assert order.reference in search(console, spelling)


def test_an_order_found_by_amount_shows_what_stripe_took_beside_what_it_asked(console, stripe_emulator):
    held_for_248()

    assert "Charged $248.00 (the order asked $249.00), held: not active" in search(console, "248")


def test_an_amount_with_a_thousands_separator_is_read_as_printed(console):
    order = OrderFactory(amount_cents=124800)

    assert order.reference in search(console, "1,248.00")
    assert order.reference in search(console, "1.248,00")


def test_an_amount_beyond_any_price_finds_nothing_instead_of_failing(console):
    OrderFactory()

    assert "Nothing found" in search(console, "$99,999,999.99")
    assert "Nothing found" in search(console, "$1,000,000,000.00")


def test_a_mirrored_charge_with_an_order_is_shown_as_that_order_once(console, stripe_emulator):
    order = held_for_248()
    stripe_mirror_sync()

    results = search(console, "$248.00")

    assert results.count(order.reference) == 1
    assert "no order" not in results


@pytest.mark.parametrize(("text", "cents"), [
    ("$248.00", 24800), ("248", 24800), ("248,00", 24800), ("248.5", 24850), ("1,248.00", 124800),
    ("1.248,00", 124800), ("1,248", 124800), ("$0.50", 50), ("usd 29", 2900),
])
def test_amounts_are_read_as_printed(text, cents):
    from support.selectors import parse_amount_cents

    assert parse_amount_cents(text) == cents


@pytest.mark.parametrize("text", ["1,248,00", "1,2480", "12/01", "248.00.00", "$", "BK-1234-5678", "1e9", "-248"])
def test_what_is_not_an_amount_is_not_read_as_one(text):
    from support.selectors import parse_amount_cents

    assert parse_amount_cents(text) is None


# --- days ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["2026-12-01", "Dec 1 2026", "Dec 1, 2026", "December 1, 2026", "1 Dec 2026",
                                      "1st December 2026", "dec. 1 2026"])
def test_a_day_finds_the_orders_created_that_day(console, spelling):
    order = created_on(OrderFactory(), datetime(2026, 12, 1, 22, 9, tzinfo=UTC))
    created_on(OrderFactory(), datetime(2026, 12, 2, 0, 1, tzinfo=UTC))
    created_on(OrderFactory(), datetime(2026, 11, 30, 23, 59, tzinfo=UTC))

    results = search(console, spelling)

    assert order.reference in results
    assert results.count("<li") == 1


@pytest.mark.parametrize("form", ["{month_abbr} {day}", "{day} {month_abbr}", "{month} {day}", "{day} {month}"])
def test_a_day_without_a_year_is_the_most_recent_one(console, form):
    from django.utils import timezone

    day = timezone.localdate() - timedelta(days=3)  # SUPPORT_TIME_ZONE is the site's UTC here
    order = created_on(OrderFactory(), datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC))
    a_year_before = created_on(OrderFactory(), datetime(day.year - 1, day.month, min(day.day, 28), 12, 0, tzinfo=UTC))

    results = search(console, form.format(month_abbr=f"{day:%b}", month=f"{day:%B}", day=day.day))

    assert order.reference in results
    assert a_year_before.reference not in results


def test_a_day_without_a_year_is_never_in_the_future():
    from support.selectors import parse_console_date

    assert parse_console_date("Dec 1", today=date(2026, 11, 30)) == date(2025, 12, 1)
    assert parse_console_date("Dec 1", today=date(2026, 12, 1)) == date(2026, 12, 1)
    assert parse_console_date("Feb 29", today=date(2026, 12, 1)) == date(2024, 2, 29)


@pytest.mark.parametrize("text", ["12/01", "01/12", "Dec", "Dec 32", "2026-13-01", "Decimal 1", "May"])
def test_an_ambiguous_or_impossible_day_is_not_read_as_one(text):
    from support.selectors import parse_console_date

    assert parse_console_date(text, today=date(2026, 12, 2)) is None


def test_a_day_finds_an_order_paid_that_day_though_created_the_day_before(console, stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="webhook")
    Order.objects.filter(pk=order.pk).update(created_at=datetime(2026, 11, 30, 23, 50, tzinfo=UTC),
                                             paid_at=datetime(2026, 12, 1, 0, 5, tzinfo=UTC))

    assert order.reference in search(console, "2026-12-01")


def test_a_day_is_the_support_teams_day(console, settings):
    # 23:30 UTC on Dec 1 is still Dec 1 in New York, and already Dec 2 in Berlin.
    order = created_on(OrderFactory(), datetime(2026, 12, 1, 23, 30, tzinfo=UTC))

    settings.SUPPORT_TIME_ZONE = "America/New_York"
    assert order.reference in search(console, "2026-12-01")
    settings.SUPPORT_TIME_ZONE = "Europe/Berlin"
    assert order.reference not in search(console, "2026-12-01")
    assert order.reference in search(console, "2026-12-02")


def test_a_day_finds_mirrored_charges_created_that_day(console, stripe_emulator):
    charge = charge_without_order(24900)
    stripe_mirror_sync()
    Charge.objects.filter(id=charge).update(created=datetime(2026, 12, 1, 22, 6, tzinfo=UTC))

    results = search(console, "Dec 1 2026")

    assert charge in results
    assert "no order" in results
    assert "Dec 1, 2026 22:06 UTC" in results


@pytest.mark.parametrize("spelling", ["248 Dec 1 2026", "$248.00 2026-12-01", "Dec 1 2026 $248.00"])
def test_an_amount_and_a_day_together_find_only_that_payment(console, stripe_emulator, spelling):
    that_day = charge_without_order(24800)
    another_day = charge_without_order(24800)
    another_amount = charge_without_order(24900)
    stripe_mirror_sync()
    Charge.objects.filter(id__in=[that_day, another_amount]).update(created=datetime(2026, 12, 1, 22, 6, tzinfo=UTC))
    Charge.objects.filter(id=another_day).update(created=datetime(2026, 11, 29, 10, 0, tzinfo=UTC))

    results = search(console, spelling)

    assert that_day in results
    assert another_day not in results
    assert another_amount not in results


def test_a_day_lists_the_newest_first(console):
    older = created_on(OrderFactory(), datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    newer = created_on(OrderFactory(), datetime(2026, 12, 1, 21, 0, tzinfo=UTC))

    results = search(console, "2026-12-01")

    assert results.index(newer.reference) < results.index(older.reference)


def test_a_day_typed_as_digits_only_is_not_read_as_a_day(console):
    order = created_on(OrderFactory(), datetime(2026, 12, 1, 12, 0, tzinfo=UTC))

    assert order.reference not in search(console, "12/01")


def test_the_search_box_says_what_can_be_searched(console):
    page = console.get(reverse("admin:index")).content.decode()

    box = page.split('class="console-search"')[1].split("</form>")[0]
    for kind in ("amount", "$248.00", "date", "Dec 1", "last 4", "reference", "Stripe id", "days in UTC"):
        assert kind in box
