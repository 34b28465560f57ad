"""Store the Stripe webhook signing secret where dj-stripe verifies incoming events.

Reads STRIPE_WEBHOOK_SECRET and STRIPE_WEBHOOK_UUID from settings and prints the URL to
register in Stripe (Dashboard > Developers > Webhooks, or the emulator's --webhook flag), and
warns when the endpoint registered at Stripe has another API version than STRIPE_API_VERSION.
With --create, it makes the endpoint at Stripe itself (with STRIPE_API_VERSION and only the
events Backstop uses) and stores the new secret. Safe to run on every deploy.
"""

import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from billing import stripe_api
from billing.services import stripe_webhook_endpoint_ensure
from billing.stripe_events import STRIPE_EVENTS_USED


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument(
            "--create", action="store_true",
            help="Create the endpoint at Stripe with STRIPE_API_VERSION, and store its signing secret.",
        )
        parser.add_argument(
            "--no-stripe", action="store_true",
            help="Only store the secret, without asking Stripe about the endpoint (when Stripe is not "
                 "reachable yet, as in the demo before its emulator starts).",
        )

    def handle(self, *args, **options):
        if not settings.STRIPE_WEBHOOK_UUID:
            # Only reachable in DEBUG: production settings refuse to load without it.
            raise CommandError(
                'STRIPE_WEBHOOK_UUID is not set; make one with: python -c "import uuid; print(uuid.uuid4())"'
            )
        path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
        url = f"{settings.SITE_URL}{path}"
        if options["create"] and options["no_stripe"]:
            raise CommandError("--create asks Stripe: it cannot be used with --no-stripe.")
        registered = None if options["no_stripe"] else self._registered_at_stripe(url)
        if options["create"]:
            secret = self._create(url, registered)
        elif not settings.STRIPE_WEBHOOK_SECRET:
            raise CommandError("STRIPE_WEBHOOK_SECRET is not set; copy it from the Stripe endpoint "
                               "(or make the endpoint with --create).")
        else:
            secret = settings.STRIPE_WEBHOOK_SECRET
            self._warn_on_other_version(registered)
        try:
            stripe_webhook_endpoint_ensure(secret=secret, uuid=settings.STRIPE_WEBHOOK_UUID, url=url,
                                           livemode=settings.STRIPE_LIVE_MODE)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Stripe webhook endpoint ready: {url}"))
        self.stdout.write("Select only these events for it in Stripe: " + ", ".join(STRIPE_EVENTS_USED))

    def _registered_at_stripe(self, url):
        """The endpoints Stripe has for this URL; None when Stripe could not be asked (the secret
        is stored all the same: a deploy must not stop because Stripe is slow)."""
        try:
            return [endpoint for endpoint in stripe_api.webhook_endpoints_list() if endpoint.url == url]
        except stripe_api.StripeError as exc:
            self.stderr.write(f"Could not read the webhook endpoints at Stripe ({exc}); their API version "
                              "was not checked.")
            return None

    def _create(self, url, registered):
        if registered is None:
            raise CommandError("Stripe could not be asked whether this endpoint exists; nothing was created.")
        if registered:
            raise CommandError(f"Stripe already has an endpoint for {url} ({registered[0].id}, API version "
                               f"{registered[0].api_version or 'the account default'}); delete it in the "
                               "Dashboard first to make it again.")
        endpoint = stripe_api.webhook_endpoint_create(
            idempotency_key=f"webhook-endpoint-{uuid.uuid4()}",  # one endpoint per run: it was just checked absent
            url=url, enabled_events=list(STRIPE_EVENTS_USED),
        )
        self.stdout.write(f"Created {endpoint.id} at Stripe with API version {endpoint.api_version}. "
                          f"Set STRIPE_WEBHOOK_SECRET={endpoint.secret} in the environment file.")
        return endpoint.secret

    def _warn_on_other_version(self, registered):
        for endpoint in registered or ():
            if endpoint.api_version != settings.STRIPE_API_VERSION:
                self.stderr.write(self.style.WARNING(
                    f"Stripe's endpoint {endpoint.id} sends events in API version "
                    f"{endpoint.api_version or 'of the account default'}, not STRIPE_API_VERSION "
                    f"({settings.STRIPE_API_VERSION}). Stripe cannot change an endpoint's version: delete it "
                    "in the Dashboard, run this command with --create, and set the new STRIPE_WEBHOOK_SECRET."))
