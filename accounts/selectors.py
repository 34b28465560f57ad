from django.db.models import Max
from django.utils import timezone

from accounts.models import Entitlement


def access_until(user, *, now=None):
    """When the customer's paid time runs out, if it has not yet: the latest end among their
    entitlements still in force. Purchases stack end to end (billing.services), so there is no gap
    before it."""
    now = now or timezone.now()
    return (Entitlement.objects.filter(user=user, revoked_at__isnull=True, ends_at__gt=now)
            .aggregate(end=Max("ends_at"))["end"])


def account_overview(user) -> dict:
    """The customer's plan, until when, and every payment and refund with its reference."""
    now = timezone.now()
    entitlements = list(Entitlement.objects.filter(user=user).select_related("plan", "order"))
    current = next((e for e in entitlements if e.is_active(now)), None)
    orders = list(user.orders.exclude(paid_at__isnull=True).select_related("plan").order_by("-paid_at"))
    return {"current": current, "entitlements": entitlements, "orders": orders,
            "access_until": access_until(user, now=now)}
