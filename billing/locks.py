"""Row locks in one place, so every path takes them the same way and in the same order."""

from billing.models import Order


def order_lock(order_id: int) -> Order:
    # of=("self",) locks the order row only, not the plan joined in for reading.
    return Order.objects.select_for_update(of=("self",)).select_related("plan").get(pk=order_id)
