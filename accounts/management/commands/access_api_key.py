"""Keys for the access API (GET /api/v1/access/?email=ADDRESS).

  manage.py access_api_key create NAME   make a key and print it, once (only its hash is stored)
  manage.py access_api_key list          every key: prefix, name, made, revoked
  manage.py access_api_key revoke PREFIX stop a key working, for good

Keys are listed and revoked in the support console too (API keys).
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.api_keys import api_key_create, api_key_revoke, api_keys_list


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a key and print it once")
        create.add_argument("name", help="the product that will use it")
        actions.add_parser("list", help="every key, without the keys themselves")
        revoke = actions.add_parser("revoke", help="stop a key working")
        revoke.add_argument("prefix", help="the key's prefix (the part before the dot), as `list` shows")

    def handle(self, *args, **options):
        try:
            getattr(self, options["action"])(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def create(self, options):
        key_row, key = api_key_create(name=options["name"])
        self.stdout.write(key)
        if options["verbosity"] >= 1:
            self.stderr.write(f"Key {key_row.prefix} for {key_row.name!r}: shown once, only its hash is kept. "
                              f"Send it as the header  Authorization: Api-Key {key_row.prefix}.…")

    def list(self, options):
        for key in api_keys_list():
            state = "revoked" if key.revoked else "active"
            self.stdout.write(f"{key.prefix}  {state:<7}  {key.created:%Y-%m-%d %H:%M}  {key.name}")

    def revoke(self, options):
        key = api_key_revoke(prefix=options["prefix"])
        self.stdout.write(self.style.SUCCESS(f"Revoked {key.prefix} ({key.name})."))
