import pytest

from billing.money import format_money


@pytest.mark.parametrize(
    ("cents", "currency", "text"),
    [
        (24900, "usd", "$249.00"),
        (5, "usd", "$0.05"),
        (-24900, "usd", "-$249.00"),
        (123456789, "eur", "€1,234,567.89"),
        (500, "jpy", "500 JPY"),
        (1999, "chf", "19.99 CHF"),
    ],
)
def test_money_is_shown_in_major_units_with_its_currency(cents, currency, text):
    assert format_money(cents, currency) == text
