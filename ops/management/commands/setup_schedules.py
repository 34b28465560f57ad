"""Declare every periodic task Backstop runs (django-q2 schedules): each installed app lists its own
in `<app>/schedules.py` (SCHEDULES), and this command installs them all without the apps knowing of each other.

Idempotent: existing schedules are updated to match, so run it on every deploy.
"""

from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand
from django.utils.module_loading import module_has_submodule
from django_q.models import Schedule


def declared_schedules() -> list[dict]:
    specs = []
    for app in apps.get_app_configs():
        if module_has_submodule(app.module, "schedules"):
            specs += getattr(import_module(f"{app.name}.schedules"), "SCHEDULES", [])
    return specs


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def handle(self, *args, **options):
        for spec in declared_schedules():
            schedule, created = Schedule.objects.update_or_create(
                name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"})
            verb = "created" if created else "up to date"
            if options["verbosity"] >= 1:
                self.stdout.write(f"{schedule.name}: {verb}")
