"""The tests' database backend empties every table between transactional tests with DELETE
(tests/postgresql/base.py)."""

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection

from billing.models import Order
from tests.factories import OrderFactory


@pytest.mark.django_db(transaction=True)
def test_the_flush_after_a_transactional_test_empties_every_table_even_rows_others_point_at():
    OrderFactory()  # an order, its plan and its user: rows that point at rows

    call_command("flush", verbosity=0, interactive=False, reset_sequences=False, inhibit_post_migrate=True)

    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)})")
            assert cursor.fetchone() == (False,), table


@pytest.mark.django_db(transaction=True)
def test_the_flush_after_a_transactional_test_empties_the_database_cache_rate_limit_counts_included():
    cache.set("rl:checkout:ada@example.com", 3)

    call_command("flush", verbosity=0, interactive=False, reset_sequences=False, inhibit_post_migrate=True)

    assert cache.get("rl:checkout:ada@example.com") is None


def test_the_flush_after_a_transactional_test_deletes_rows_instead_of_truncating_tables():
    assert connection.ops.sql_flush(no_style(), [Order._meta.db_table]) == [
        f'DELETE FROM "{Order._meta.db_table}";', 'DELETE FROM "backstop_cache";']
