from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from billing import (
            esp,  # noqa: F401  (connects the anymail receivers)
            mirror_erasure,  # noqa: F401  (keeps erased people out of dj-stripe's mirror)
            signins,  # noqa: F401  (sign-ins on the order timeline)
        )
