"""django-q2 task entry points: fetch arguments, call one service, nothing more."""

from outbox import services


def send_outbound_email(email_id: int):
    services.outbound_email_send(email_id=email_id)


def dispatch_due_emails():
    return services.outbound_email_dispatch_due()
