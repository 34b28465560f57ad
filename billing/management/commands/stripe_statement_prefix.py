"""Read the statement prefix from Stripe's account settings again (it is kept for a day), and print it.

Run it after changing the prefix in Stripe's Dashboard (Settings > Public details)."""

from django.core.management.base import BaseCommand, CommandError

from billing.statement import statement_prefix_refresh


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def handle(self, *args, **options):
        prefix = statement_prefix_refresh()
        if not prefix:
            raise CommandError("Stripe did not give the account's statement prefix (see the log); the search "
                               "still finds a statement code written with its '*'.")
        self.stdout.write(f"Statement prefix: {prefix}")
