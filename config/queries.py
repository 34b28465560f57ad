"""Reading the one row a unique key names.

`QuerySet.first()` sorts before it takes a row: by the model's ordering, or by the primary key. For
a filter on a unique key there is one row or none, and the sort is work for nothing. In Django,
resolving and compiling an ORDER BY (each ordering expression's identity is worked out from its
constructor's signature) is a fifth to a third of building such a read (0.1-0.35 of 0.5-0.8 ms for
an order with its plan and account), and PostgreSQL is asked to plan a sort too. Under `make load`
the ORDER BY of a purchase's reads was 7-8% of the web server's and the task worker's CPU in
py-spy's profiles (issue 21, docs/performance.md).
"""

from django.db.models import QuerySet


def by_unique_key(queryset: QuerySet):
    """The row (model instance, or values) the queryset's filter on a unique key matches, or None."""
    return next(iter(queryset.order_by()[:1]), None)
