"""Accounts' periodic tasks (django-q2 schedules), installed by `manage.py setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        # A period that runs out changes nothing in the database by itself: this notices it, once.
        "name": "access: mark periods that ran out, tell the product",
        "func": "accounts.tasks.mark_access_ended",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "access: deliver due webhooks to the product",
        "func": "accounts.tasks.dispatch_access_events",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
]
