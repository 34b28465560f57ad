"""django-q2 task entry points: fetch arguments, call one service, nothing more."""

from billing import services
from billing.models import Order
from billing.selectors import payment_intent_from_mirror


def send_outbound_email(email_id: int):
    services.outbound_email_send(email_id=email_id)


def settle_order(order_id: int, actor: str, reason: str = ""):
    """Settle after a Stripe event, on dj-stripe's freshly synced mirror when it is enough."""
    pi_id = Order.objects.filter(pk=order_id).values_list("stripe_payment_intent_id", flat=True).first()
    mirrored = payment_intent_from_mirror(pi_id) if pi_id else None
    services.order_settle(order_id=order_id, actor=actor, reason=reason, payment_intent=mirrored)


def dispatch_due_emails():
    return services.outbound_email_dispatch_due()


def reconcile():
    """The sweep, from the django-q2 schedule; returns the counts for the task log."""
    from billing.reconcile import reconcile_run

    run = reconcile_run()
    return {"status": run.status, **run.counts}
