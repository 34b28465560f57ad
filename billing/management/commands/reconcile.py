"""Run one pass of the safety-net sweep: pull sync, find discrepancies, fix or hand to a person.

Meant for cron every minute (`* * * * * manage.py reconcile`); `setup_schedules` also installs it
as a django-q2 schedule, so a plain `qcluster` deployment has it without cron. Two copies at once
(two hosts) are safe: one skips, and every action is idempotent anyway.

    manage.py reconcile                 # one pass from where the last one left off
    manage.py reconcile --dry-run -v 2  # print what it would do; change and send nothing
    manage.py reconcile --since 7d      # widen the window: re-read Stripe and re-check 7 days
    manage.py reconcile --since all     # every mirrored charge (after a restore from backup)

Exit status: 0 when the pass finished (even if it had to hand cases to a person), 1 when some
step failed (the run record and the log say which), 2 on bad arguments.
"""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import ReconcileRun
from billing.reconcile import reconcile_run
from config.env import parse_duration


def parse_since(text: str) -> datetime:
    """'all', a duration back from now ('90m', '7d'), or an ISO date/time ('2026-11-01')."""
    if text == "all":
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        return timezone.now() - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since takes 'all', a duration such as 90m or 7d, or a date such as "
                           f"2026-11-01, not {text!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; change nothing.")
        parser.add_argument("--since", type=parse_since, default=None,
                            help="Widen the window: 'all', a duration (90m, 7d) or a date (2026-11-01).")

    def handle(self, *args, dry_run, since, verbosity, **options):
        result = reconcile_run(dry_run=dry_run, since=since)
        if isinstance(result, ReconcileRun):
            counts, actions, errors = result.counts, result.actions, result.errors
            if result.status == ReconcileRun.Status.SKIPPED:
                self.stdout.write(self.style.WARNING("Another sweep is running; this one skipped."))
                return
        else:
            counts, actions, errors = dict(result.counts), result.actions, result.errors
        if verbosity >= 2:
            for line in actions:
                self.stdout.write(f"  {line}")
        for line in errors:
            self.stderr.write(self.style.ERROR(f"  {line}"))
        found = {k: v for k, v in sorted(counts.items()) if v and not k.startswith("sync_") and k != "errors"}
        synced = sum(v for k, v in counts.items() if k.startswith("sync_"))
        summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found.items()) or "nothing to fix"
        prefix = "Dry run: would do" if dry_run else "Sweep"
        duration = f" in {result.duration_ms} ms" if isinstance(result, ReconcileRun) else ""
        line = f"{prefix}: {summary}; {synced} Stripe objects mirrored{duration}."
        if verbosity >= 1:
            self.stdout.write(self.style.ERROR(line) if errors else self.style.SUCCESS(line))
        if errors:
            raise CommandError(f"{len(errors)} step(s) failed; see above and the run record in the admin.")
