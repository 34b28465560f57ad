"""django-q2 task entry points: fetch arguments, call one service, nothing more."""

from billing.reconcile import reconcile_run
from billing.renewals import reminders_send
from outbox import tasks as outbox_tasks

# The outbox's tasks, under the names they had before it moved to outbox/: tasks already in the queue
# (and a schedule not yet updated by `setup_schedules`) name these.
send_outbound_email = outbox_tasks.send_outbound_email
dispatch_due_emails = outbox_tasks.dispatch_due_emails


def reconcile():
    """The sweep, from the django-q2 schedule; returns the counts for the task log."""
    run = reconcile_run()
    return {"status": run.status, **run.counts}


def renewal_reminders():
    """Renewal reminders and plan-ended emails, from the django-q2 schedule; counts for the log."""
    return reminders_send().counts
