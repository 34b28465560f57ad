"""System checks for how Backstop talks to Stripe (run by `manage.py check` and at every start)."""

import stripe
from django.conf import settings
from django.core import checks


@checks.register("backstop")
def stripe_api_version_check(app_configs=None, **kwargs):
    """The stripe SDK's typed objects, and the fields our code reads from them, follow the API
    version the SDK is built for. A different STRIPE_API_VERSION makes Stripe answer in another
    shape (renamed or missing fields) that nothing here was tested against."""
    if stripe.api_version == settings.STRIPE_API_VERSION:
        return []
    return [checks.Warning(
        f"STRIPE_API_VERSION is {settings.STRIPE_API_VERSION}, but the installed stripe SDK "
        f"({stripe.VERSION}) is built for {stripe.api_version}: Stripe will answer in a shape the "
        "code and its tests never saw.",
        hint=f"Unset STRIPE_API_VERSION (or set it to {stripe.api_version}), or install the stripe "
             f"SDK that pins {settings.STRIPE_API_VERSION}. Create the webhook endpoint with the same "
             "version (manage.py stripe_webhook_endpoint --create).",
        id="backstop.W001",
    )]
