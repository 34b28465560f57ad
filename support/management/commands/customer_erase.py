"""`manage.py customer_erase EMAIL --yes`: erase a customer for good (docs/decisions/0025-erasure.md)."""

from django.core.management.base import BaseCommand, CommandError

from billing import stripe_api
from billing.errors import BillingError, ErasureRefused
from billing.services.erasure import customer_erase, customer_erasure_plan
from support.erasure import support_mail_held


class Command(BaseCommand):
    help = ("Erase the customer with this email address, here and at Stripe; rows kept for bookkeeping keep "
            "amounts, dates and references. Without --yes, says what it would remove.")

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--yes", action="store_true", help="Really erase (it cannot be undone).")

    def handle(self, *args, email, yes, **options):
        held_elsewhere = support_mail_held(email)
        plan = customer_erasure_plan(email, held_elsewhere=held_elsewhere)
        if plan is None:
            raise CommandError(f"Nothing is held about {email.strip()}: no account, order, email or support mail.")
        if not yes:
            lines = "\n".join(f"  - {line}" for line in plan.describe())
            raise CommandError(f"Not erased: run again with --yes to remove, for good,\n{lines}")
        try:
            record = customer_erase(email=email, actor="command", held_elsewhere=held_elsewhere)
        except ErasureRefused as exc:
            raise CommandError(str(exc)) from exc
        except (BillingError, stripe_api.StripeError) as exc:
            raise CommandError(f"Erasure not finished (run it again to finish): {exc}") from exc
        self.stdout.write(f"Erased: they are now {record.placeholder} on the rows kept for bookkeeping.")
