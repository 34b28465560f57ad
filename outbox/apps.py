from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self):
        from outbox import esp  # noqa: F401  (connects the anymail receivers; imported once models are ready)
