from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operational tools, apart from the domain apps: the fire drill, the demo's setup, the 50x page,
    the schedules and the Stripe webhook endpoint. It may use every app and the Stripe emulator;
    nothing imports it, so production code never loads the emulator."""

    name = "ops"
    verbose_name = "Operations"
