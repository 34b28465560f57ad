"""Build at a server's start what every process would otherwise build on its first request or task.

Django populates the URL resolver (0.4 CPU-s here: the admin's, dj-stripe's and our patterns),
compiles each template (the cached loader) the first time a process needs them, and compiles its
email validator's patterns on the first address it checks (about 40 ms: the domain pattern spans
Unicode, case-insensitively). gunicorn workers and django-q2's task workers (forked from the
cluster's process, and again each time one is recycled) each paid that inside a customer's
purchase: under `make load` about 10 ms per purchase in a 30 s level. Done once before the workers
start (in the cluster's process, inherited by every fork) or as each web worker boots, no customer
waits for it.
"""

import contextlib
import gc
from pathlib import Path

from django.conf import settings
from django.core.validators import validate_email
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.urls import get_resolver


def warm_up() -> None:
    get_resolver().reverse_dict  # noqa: B018  (reading it populates the resolver)
    validate_email("warm-up@example.com")  # the checkout form's first address: not in a purchase
    for directory in settings.TEMPLATES[0]["DIRS"]:
        root = Path(directory)
        for path in sorted(root.rglob("*")):
            if path.suffix in (".html", ".txt") and path.is_file():
                # A file that is no template on its own is compiled where it is used, if ever.
                with contextlib.suppress(TemplateDoesNotExist, TemplateSyntaxError):
                    get_template(str(path.relative_to(root)))


def startup_objects_freeze() -> None:
    """Move everything the process has built so far out of the garbage collector's way.

    A started process holds about 155,000 objects that live as long as it does (Django's and
    dj-stripe's models, the URL resolver, the compiled templates, the Stripe SDK's classes). Python's
    full collection walks all of them each time it runs, about 80 ms of CPU here, to free what a few
    requests left behind; under load it runs every few seconds in each web and task worker. Frozen,
    they are left out (the use `gc.freeze` is documented for: a server's state after its start).
    Called once, after warm_up(); in the task cluster before it forks, so its workers inherit it.
    """
    gc.collect()
    gc.freeze()
