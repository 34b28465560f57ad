from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"

    def ready(self):
        # Imported here, not at the top: models and the modules using them load once the registry is ready.
        from outbox import kinds
        from support import inbound, receivers  # noqa: F401  (connect the inbound-email and billing receivers)
        from support.emails import EMAIL_KINDS

        kinds.register(*EMAIL_KINDS)
