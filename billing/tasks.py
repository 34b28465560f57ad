"""django-q2 task entry points: fetch arguments, call one service, nothing more."""

from billing import services
from billing.reconcile import reconcile_run
from billing.renewals import reminders_send


def send_outbound_email(email_id: int):
    services.outbound_email_send(email_id=email_id)


def dispatch_due_emails():
    return services.outbound_email_dispatch_due()


def reconcile():
    """The sweep, from the django-q2 schedule; returns the counts for the task log."""
    run = reconcile_run()
    return {"status": run.status, **run.counts}


def renewal_reminders():
    """Renewal reminders and plan-ended emails, from the django-q2 schedule; counts for the log."""
    return reminders_send().counts
