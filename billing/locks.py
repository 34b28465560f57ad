"""Row locks in one place, so every path takes them the same way and in the same order."""

from django.db import connection

from billing.models import Order


def order_lock(order_id: int) -> Order:
    # of=("self",) locks the order row only, not the plan joined in for reading.
    return Order.objects.select_for_update(of=("self",)).select_related("plan").get(pk=order_id)


def address_lock(email: str):
    """Serialise work for one email address (its checkouts) until the current transaction ends.

    A transaction-level advisory lock on PostgreSQL: nothing to clean up after a crash, and it
    survives PgBouncer's transaction pooling. SQLite (the demo) needs none: its transactions are
    IMMEDIATE (config/settings.py), so writers already queue one at a time.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("address_lock() holds until the transaction ends; call it inside one.")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"address:{email}"])
