"""Prepare the demo: the Annual plan, a support person, and the webhook endpoint.

Idempotent: re-running keeps existing data and resets the support person's password to the
one given, so the login printed by `make demo` always works.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.services import plan_ensure_default


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--support-email", default="support@backstop.localhost")
        parser.add_argument("--support-password", required=True)

    def handle(self, *args, **options):
        plan = plan_ensure_default()
        self.stdout.write(f"Plan: {plan}")
        # The demo's support person may do everything the console offers, refunds included.
        # "--password=…" as one argument: call_command hands a required option's value over as a
        # separate argument, which argparse takes for an option when it starts with "-" (a random
        # password does, one time in 32).
        call_command("support_staff", options["support_email"], f"--password={options['support_password']}",
                     name="Demo Support", refunds=True, stdout=self.stdout)
        call_command("setup_schedules", stdout=self.stdout)
        if settings.STRIPE_WEBHOOK_SECRET:
            # The demo's emulator starts after this: nothing to ask it yet.
            call_command("stripe_webhook_endpoint", no_stripe=True, stdout=self.stdout)
