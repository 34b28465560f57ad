import sys

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from billing import (
            esp,  # noqa: F401  (connects the anymail receivers)
            signins,  # noqa: F401  (sign-ins on the order timeline)
        )
        from config.warmup import warm_up  # the URL patterns import views, which need the apps ready

        if sys.argv[1:2] == ["qcluster"]:
            # The task cluster forks its workers from this process: build once, here, what each
            # worker would otherwise build on its first email (config/warmup.py).
            warm_up()
