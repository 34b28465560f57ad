from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from billing import esp, webhooks  # noqa: F401  (connects the dj-stripe and anymail receivers)
