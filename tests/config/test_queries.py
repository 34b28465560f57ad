"""A read by a unique key takes its row without asking for a sort (config/queries.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Order
from billing.tokens import order_from_status_token, order_status_token
from config.queries import by_unique_key
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_a_read_by_a_unique_key_returns_its_row_without_an_order_by():
    order = OrderFactory()
    OrderFactory()  # another row, so a read that ignored the filter could not pass

    with CaptureQueriesContext(connection) as queries:
        found = by_unique_key(Order.objects.filter(public_id=order.public_id))

    assert found == order
    assert len(queries) == 1
    assert "ORDER BY" not in queries[0]["sql"]


def test_a_read_by_a_unique_key_that_matches_nothing_returns_none():
    OrderFactory()

    assert by_unique_key(Order.objects.filter(reference="BK-NONE-NONE")) is None


def test_the_order_a_status_token_names_is_read_without_an_order_by():
    order = OrderFactory()

    with CaptureQueriesContext(connection) as queries:
        found = order_from_status_token(order_status_token(order))

    assert found == order
    assert found.plan == order.plan  # read with it
    assert all("ORDER BY" not in query["sql"] for query in queries)
