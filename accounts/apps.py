from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and staff"

    def ready(self):
        # Imported here, not at the top: models and the modules using them load once the registry is ready.
        from accounts.emails import EMAIL_KINDS
        from outbox import kinds

        kinds.register(*EMAIL_KINDS)
