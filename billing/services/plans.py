"""Plans and setup: the default plan, and our side of the Stripe webhook endpoint."""

from django.db import transaction
from djstripe.models import WebhookEndpoint

from billing.models import Plan

DEFAULT_PLAN = {
    "code": "annual",
    "name": "Annual",
    "amount_cents": 24900,
    "currency": "usd",
    "duration_months": 12,
}


@transaction.atomic
def plan_ensure_default() -> Plan:
    """Create the Annual plan once; re-running never changes a plan that is already on sale."""
    plan, _created = Plan.objects.get_or_create(
        code=DEFAULT_PLAN["code"],
        defaults={k: v for k, v in DEFAULT_PLAN.items() if k != "code"},
    )
    return plan


@transaction.atomic
def stripe_webhook_endpoint_ensure(*, secret: str, uuid: str, url: str, livemode: bool):
    """Store the signing secret of the Stripe webhook endpoint in dj-stripe's WebhookEndpoint,
    where billing/webhooks.py reads it to verify each delivery.

    The endpoint itself is configured in Stripe (dashboard, or the emulator's --webhook flag);
    this keeps our side in step so that `stripe/webhook/<uuid>/` accepts its signed events.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("The webhook signing secret starts with whsec_.")
    endpoint, _created = WebhookEndpoint.objects.update_or_create(
        djstripe_uuid=uuid,
        defaults={
            "id": f"we_backstop_{str(uuid).replace('-', '')[:20]}",
            "secret": secret,
            "url": url,
            "livemode": livemode,
            "status": "enabled",
            "enabled_events": ["*"],
            "stripe_data": {},
        },
    )
    return endpoint


@transaction.atomic
def plan_set(*, code: str, name: str, amount_cents: int, currency: str, duration_months: int,
             on_sale: bool = True) -> tuple[Plan, bool]:
    """Create the plan with this code, or change it to these values; returns (plan, created).

    A change applies to checkouts from now on: every order keeps the amount it was created with.
    """
    plan = Plan.objects.select_for_update().filter(code=code).first()
    created = plan is None
    plan = plan or Plan(code=code)
    plan.name, plan.amount_cents, plan.currency = name, amount_cents, currency
    plan.duration_months, plan.is_active = duration_months, on_sale
    plan.full_clean()
    plan.save()
    return plan, created
