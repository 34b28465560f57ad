"""The outbox's periodic task (django-q2 schedule), installed by `manage.py setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "outbox: send due emails, flag interrupted sends",
        "func": "outbox.tasks.dispatch_due_emails",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
]
