"""Row locks in one place, so every path takes them the same way and in the same order."""

from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from billing.models import Lease, Order


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


def lease_take(name: str, *, holder: str, seconds: int) -> bool:
    """Take (or renew) the named lease for `seconds` if it is free, run out, or already ours.

    One UPDATE decides: PostgreSQL re-checks its WHERE on the row another taker just changed, so of
    two at once exactly one wins, whichever connection each statement runs on."""
    now = timezone.now()
    Lease.objects.get_or_create(name=name, defaults={"expires_at": now})
    taken = Lease.objects.filter(Q(expires_at__lte=now) | Q(holder=holder), name=name).update(
        holder=holder, expires_at=now + timedelta(seconds=seconds))
    return taken == 1


def lease_release(name: str, *, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=timezone.now())
