"""Declare every periodic task Backstop runs, in one place (django-q2 schedules).

Idempotent: existing schedules are updated to match, so run it on every deploy.
"""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "outbox: send due emails, flag interrupted sends",
        "func": "billing.tasks.dispatch_due_emails",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
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
        "name": "support: daily digest of what the nets caught",
        "func": "support.tasks.send_daily_digest",
        "schedule_type": Schedule.DAILY,
    },
]


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def handle(self, *args, **options):
        for spec in SCHEDULES:
            schedule, created = Schedule.objects.update_or_create(
                name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"})
            verb = "created" if created else "up to date"
            if options["verbosity"] >= 1:
                self.stdout.write(f"{schedule.name}: {verb}")
