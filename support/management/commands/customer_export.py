"""`manage.py customer_export EMAIL`: everything held about one person, as one JSON document."""

import json

from django.core.management.base import BaseCommand, CommandError

from support.selectors.customer_data import customer_data


class Command(BaseCommand):
    help = "Print one JSON document of everything Backstop holds about the customer with this email address."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        document = customer_data(email)
        if document is None:
            raise CommandError(f"Nothing is held about {email.strip()}: no account, order, email or support mail.")
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
