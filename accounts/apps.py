from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and staff"

    def ready(self):
        from accounts import signals  # noqa: F401  (sign-ins on the order timeline)
