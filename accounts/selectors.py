from django.urls import reverse
from django.utils import timezone

from accounts.access import access_until  # the one definition; billing and the pages read it here
from accounts.models import Entitlement
from billing.renewals import days_left as calendar_days_left
from billing.tokens import order_status_token, renew_path

# Within this many days of the end, the account page puts Renew first.
RENEW_SOON_DAYS = 30


def account_overview(user) -> dict:
    """The customer's plan, until when and which payment's period holds that end (`current`), and
    every payment and refund with its reference and the period it paid for (`order.period`)."""
    now = timezone.now()
    entitlements = list(Entitlement.objects.filter(user=user).select_related("plan", "order"))
    current = next((e for e in entitlements if e.is_active(now)), None)
    orders = list(user.orders.exclude(paid_at__isnull=True).select_related("plan").order_by("-paid_at"))
    for order in orders:
        # Every payment Stripe took has a receipt, reached by the order's own signed link.
        order.receipt_url = (reverse("billing:receipt", kwargs={"token": order_status_token(order)})
                             if order.amount_received_cents is not None else "")
    until = access_until(user, now=now)
    # The end of all paid time is the end of the last period stacked: its payment is the one to
    # name beside that date (the first payment's period ends a year earlier).
    holder = next((e for e in entitlements if e.revoked_at is None and e.ends_at == until), None) if until else None
    if holder is not None:
        current = holder
    # Each payment with the period it paid for (none for one that never gave access).
    periods = {e.order_id: e for e in entitlements}
    for order in orders:
        order.period = periods.get(order.id)
    # Calendar days to the end date (0 on the day), counted as the reminder emails count them.
    days_left = calendar_days_left(until, now) if until else None
    return {"current": current, "entitlements": entitlements, "orders": orders,
            "access_until": until, "days_left": days_left,
            "renew_soon": days_left is not None and days_left <= RENEW_SOON_DAYS,
            "renew_url": renew_path(user)}
