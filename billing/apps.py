from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported in ready(): these modules load models, which Django allows only once apps are loaded.
        from accounts.proof import one_click_check_set
        from billing import signins  # noqa: F401  (sign-ins on the order timeline)
        from billing.account_views import one_click_session_fits
        from billing.emails import EMAIL_KINDS
        from outbox import kinds

        one_click_check_set(one_click_session_fits)
        kinds.register(*EMAIL_KINDS)
