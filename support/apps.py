from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"

    def ready(self):
        from support import inbound, receivers  # noqa: F401  (connect the inbound-email and billing receivers)
