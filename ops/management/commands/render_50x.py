"""Write the page the reverse proxy shows while the app is down: templates/50x.html with SUPPORT_EMAIL.

Run on each deploy, as collectstatic is: `python manage.py render_50x /var/www/backstop/50x.html`
(docs/deploy/README.md). The file is plain HTML with inline CSS, so the proxy can serve it when no
Django process is running. The demo supervisor writes var/50x.html the same way. Without a path, the
page is printed.
"""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from config.errors import unavailable_page


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?",
                            help="where to write the page (replaced atomically); printed if omitted")

    def handle(self, *args, path=None, **options):
        page = unavailable_page()
        if path is None:
            self.stdout.write(page, ending="")
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(page, encoding="utf-8")
        partial.chmod(0o644)  # the proxy's own user reads it
        os.replace(partial, target)  # a proxy reading it mid-deploy sees the old page or the new one
        if options["verbosity"] > 0:
            self.stdout.write(f"Wrote {target} (support address {settings.SUPPORT_EMAIL}).")
