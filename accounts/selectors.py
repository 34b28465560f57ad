from django.utils import timezone

from accounts.models import Entitlement


def account_overview(user) -> dict:
    """The customer's plan, until when, and every payment and refund with its reference."""
    now = timezone.now()
    entitlements = list(Entitlement.objects.filter(user=user).select_related("plan", "order"))
    current = next((e for e in entitlements if e.is_active(now)), None)
    orders = list(user.orders.exclude(paid_at__isnull=True).select_related("plan").order_by("-paid_at"))
    return {"current": current, "entitlements": entitlements, "orders": orders}
