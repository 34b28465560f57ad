import sys

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported in ready(): these modules load models, which Django allows only once apps are loaded.
        from accounts.proof import one_click_check_set
        from billing import (
            checks,  # noqa: F401  (registers the Stripe API version check)
            mirror_erasure,  # noqa: F401  (keeps erased people out of dj-stripe's mirror)
            signins,  # noqa: F401  (sign-ins on the order timeline)
        )
        from billing.account_views import one_click_session_fits
        from billing.emails import EMAIL_KINDS
        from config.warmup import startup_objects_freeze, warm_up  # the URL patterns import views: apps first
        from outbox import kinds

        one_click_check_set(one_click_session_fits)
        kinds.register(*EMAIL_KINDS)
        if sys.argv[1:2] == ["qcluster"]:
            # The task cluster forks its workers from this process: build once, here, what each
            # worker would otherwise build on its first email (config/warmup.py).
            warm_up()
            startup_objects_freeze()
