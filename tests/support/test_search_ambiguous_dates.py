"""A date typed with slashes ("12/05") is Dec 5 to some and May 12 to others: the console says so
and how to type it, instead of a bare "Nothing found"."""

from datetime import date

import pytest
from django.urls import reverse

from support import selectors

pytestmark = pytest.mark.django_db


def test_searching_12_05_explains_that_the_date_is_ambiguous_and_how_to_type_it(console):
    page = console.get(reverse("admin:index"), {"q": "12/05"}).content.decode().replace("&#x27;", "'")

    assert "12/05 could be Dec 5 or May 12: type " in page
    assert "Nothing found." not in page


def test_the_explanation_offers_both_days_in_a_form_the_search_reads():
    hint = selectors.console_date_hint("12/05", today=date(2026, 12, 5))

    assert hint == "12/05 could be Dec 5 or May 12: type 2026-12-05 or Dec 5 (for May 12: 2026-05-12 or May 12)."
    assert selectors.parse_console_date("2026-12-05") == date(2026, 12, 5)
    assert selectors.parse_console_date("May 12", today=date(2026, 12, 5)) == date(2026, 5, 12)


def test_a_slashed_date_only_one_way_round_says_how_to_type_it():
    hint = selectors.console_date_hint("25/12/2025", today=date(2026, 12, 5))

    assert hint == "25/12/2025 is Dec 25, 2025 written with slashes: type 2025-12-25 or Dec 25, 2025."


def test_a_query_that_is_not_a_slashed_date_has_no_explanation():
    for query in ("Dec 5", "2026-12-05", "ada@example.com", "4242", "12/5x"):
        assert selectors.console_date_hint(query) is None


def test_the_same_number_twice_is_not_ambiguous():
    assert selectors.console_date_hint("05/05", today=date(2026, 12, 5)) == (
        "05/05 is May 5 written with slashes: type 2026-05-05 or May 5.")
