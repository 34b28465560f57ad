"""Email customers whose plan is ending: reminders before the end, and one email on the day.

`setup_schedules` installs this as an hourly django-q2 schedule; cron may run it as well
(`0 * * * * manage.py renewal_reminders -v 0`). Each email is owed once per plan whoever runs it
and however often (a unique key on the outbox row), so two copies at once are safe.

    manage.py renewal_reminders                 # owe the emails now due; the outbox sends them
    manage.py renewal_reminders --dry-run -v 2  # list who would get what; change and send nothing

The reminders are RENEWAL_REMINDERS before the end (default 30d,7d); after a missed window only
the latest reminder due goes out, with the true number of days left. Nothing goes to plans that
were renewed, refunded or revoked, to staff, or to customers who turned reminders off.

Exit status: 0 when the pass finished, 2 on bad arguments.
"""

from django.core.management.base import BaseCommand

from billing.renewals import reminders_send


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print who would be emailed; change nothing.")

    def handle(self, *args, dry_run, verbosity, **options):
        summary = reminders_send(dry_run=dry_run)
        if verbosity >= 2:
            for line in summary.actions:
                self.stdout.write(f"  {line}")
        prefix = "Dry run: would owe" if dry_run else "Owed"
        line = (f"{prefix} {summary.reminders} reminder(s) and {summary.ended} plan-ended email(s); "
                f"{summary.already} already owed earlier.")
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(line))
