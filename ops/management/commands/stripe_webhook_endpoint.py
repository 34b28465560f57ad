"""Store the Stripe webhook signing secret where dj-stripe verifies incoming events.

Reads STRIPE_WEBHOOK_SECRET and STRIPE_WEBHOOK_UUID from settings and prints the URL to
register in Stripe (Dashboard > Developers > Webhooks, or the emulator's --webhook flag).
Safe to run on every deploy.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from billing.services import stripe_webhook_endpoint_ensure
from billing.stripe_events import STRIPE_EVENTS_USED


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def handle(self, *args, **options):
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise CommandError("STRIPE_WEBHOOK_SECRET is not set; copy it from the Stripe endpoint.")
        if not settings.STRIPE_WEBHOOK_UUID:
            # Only reachable in DEBUG: production settings refuse to load without it.
            raise CommandError(
                'STRIPE_WEBHOOK_UUID is not set; make one with: python -c "import uuid; print(uuid.uuid4())"'
            )
        path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
        url = f"{settings.SITE_URL}{path}"
        try:
            stripe_webhook_endpoint_ensure(
                secret=settings.STRIPE_WEBHOOK_SECRET,
                uuid=settings.STRIPE_WEBHOOK_UUID,
                url=url,
                livemode=settings.STRIPE_LIVE_MODE,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Stripe webhook endpoint ready: {url}"))
        self.stdout.write("Select only these events for it in Stripe: " + ", ".join(STRIPE_EVENTS_USED))
