"""Billing's periodic tasks (django-q2 schedules), installed by `manage.py setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "sweep: pull sync, settle, adopt, hold or refund, follow up",
        "func": "billing.tasks.reconcile",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "renewals: reminders before a plan ends, and the email on the day",
        "func": "billing.tasks.renewal_reminders",
        "schedule_type": Schedule.HOURLY,
    },
    {
        "name": "retention: prune old sweep runs, webhook log and support reply bodies",
        "func": "billing.services.retention.retention_prune",
        "schedule_type": Schedule.DAILY,
    },
]
