"""Support's periodic tasks (django-q2 schedules), installed by `manage.py setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "support: daily digest of what the nets caught",
        "func": "support.tasks.send_daily_digest",
        "schedule_type": Schedule.DAILY,
    },
    {
        # Its own schedule, not a step of the sweep: it must run when the sweep is stuck or failing.
        # It also watches outgoing email and retries what alert channels still owe.
        "name": "support: watch the sweep, alert the team while it is down",
        "func": "support.tasks.watch_sweep",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "retention: delete answered support mail past RETAIN_SUPPORT_MAIL",
        "func": "support.retention.support_mail_prune",
        "schedule_type": Schedule.DAILY,
    },
]
