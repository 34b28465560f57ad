"""django-q2 task entry points: fetch arguments, call one service, nothing more."""

from billing import services


def send_outbound_email(email_id: int):
    services.outbound_email_send(email_id=email_id)


def settle_order(order_id: int, actor: str, reason: str = ""):
    services.order_settle(order_id=order_id, actor=actor, reason=reason)


def dispatch_due_emails():
    return services.outbound_email_dispatch_due()
