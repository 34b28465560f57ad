"""Run real checkouts, break each one on purpose, and time how long until the customer is whole.

Needs the whole system running against this database: the web server (webhooks), the django-q2
cluster (tasks and the sweep's schedule) and Stripe (the local emulator, or real Stripe in test
mode, where the emulator-only drills are skipped). `make firedrill` starts all of that on the
embedded defaults, runs every drill and stops it again. The drills are described in
ops/firedrill.py and docs/firedrill.md.

    manage.py firedrill                              # every drill, at once
    manage.py firedrill --drill killed-after-charge  # one (repeatable)
    manage.py firedrill --timeout 300 --json

Exit status: 0 when every drill that ran converged, 1 when one did not (or the system is not
running), 2 on bad arguments. It leaves real orders behind: never run it on production.
"""

import threading

from django.core.management.base import BaseCommand, CommandError

from ops import firedrill


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--drill", action="append", choices=list(firedrill.DRILLS),
                            help="Run only this drill (repeatable); default: all of them.")
        parser.add_argument("--timeout", type=float, default=180,
                            help="Seconds after the charge before a drill counts as not converged (default 180).")
        parser.add_argument("--json", action="store_true", help="Print the outcomes as JSON instead of a table.")

    def handle(self, *args, drill, timeout, json, verbosity, **options):
        names = list(dict.fromkeys(drill or firedrill.DRILLS))
        try:
            plan = firedrill.preflight()
            stripe_side = firedrill.StripeUnderTest()
        except firedrill.NotReady as exc:
            raise CommandError(str(exc)) from None

        lock = threading.Lock()

        def say(line):
            if verbosity >= 1 and not json:
                with lock:
                    self.stdout.write(line)

        outcomes = firedrill.run(names, timeout=timeout, plan=plan, stripe_side=stripe_side, say=say)
        if json:
            self.stdout.write(firedrill.as_json(outcomes))
        else:
            self.stdout.write("")
            self.stdout.write(firedrill.table(outcomes))
            self.stdout.write("")
        line = firedrill.summary(outcomes, timeout=timeout)
        if any(o.failed for o in outcomes):
            raise CommandError(line)
        if not json:
            self.stdout.write(self.style.SUCCESS(line))
