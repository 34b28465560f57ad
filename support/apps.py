from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"

    def ready(self):
        from support import inbound  # noqa: F401  (connects the inbound-email receiver)
