from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from billing import (
            esp,  # noqa: F401  (connects the anymail receivers)
            signins,  # noqa: F401  (sign-ins on the order timeline)
        )
