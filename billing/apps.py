from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported here, not at the top: models and the modules using them load once the registry is ready.
        from billing import signins  # noqa: F401  (sign-ins on the order timeline)
        from billing.emails import EMAIL_KINDS
        from outbox import kinds

        kinds.register(*EMAIL_KINDS)
