"""Stripe's webhook endpoint: check the delivery, settle the order it concerns, answer.

The body is checked (size, a known endpoint, Stripe's signature over the exact bytes, as dj-stripe
checks it), then `stripe_event_receive` settles the order from Stripe's word, or recognises the
event as old news for an order already settled (one read). dj-stripe's own view would store the
delivery, re-fetch the object and mirror it with what it refers to, inside the request: most of
a purchase's cost under load. The mirror is kept by the pull sync instead
(docs/decisions/0009-webhooks-settle-the-mirror-pulls.md).

If Stripe cannot be asked now, the answer is 503 and Stripe delivers the event again later; the
sweep settles the order meanwhile if it can.
"""

import json
import logging

import stripe
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import WebhookEndpoint

from billing import services
from config.failpoints import failpoint

logger = logging.getLogger(__name__)

# Stripe's event payloads are a few KB; the largest real ones (an invoice or checkout session with
# many lines) stay well under 256 KiB, so nothing Stripe sends is refused. Anything bigger is not
# from Stripe and would only cost memory. Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is no
# substitute: it is site-wide, much larger, and only looks at the declared Content-Length, which a
# client can understate.
WEBHOOK_MAX_BODY_BYTES = 256 * 1024


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


# Stripe sends no CSRF token and no login.
@csrf_exempt
@login_not_required
@require_POST
def stripe_webhook(request, uuid):
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(400, "Malformed Content-Length.")
    if declared_length > WEBHOOK_MAX_BODY_BYTES:
        return _answer(413, f"Request body over {WEBHOOK_MAX_BODY_BYTES} bytes.")
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).values_list("secret", "djstripe_tolerance").first()
    if endpoint is None:
        return _answer(404, "Unknown webhook endpoint.")

    # Under WSGI Django never reads past Content-Length, but an ASGI server hands over the whole
    # body it received, whatever the header said: read one byte past the limit, never more.
    body = request.read(WEBHOOK_MAX_BODY_BYTES + 1)
    if len(body) > WEBHOOK_MAX_BODY_BYTES:
        return _answer(413, f"Request body over {WEBHOOK_MAX_BODY_BYTES} bytes.")
    secret, tolerance = endpoint
    try:
        stripe.WebhookSignature.verify_header(body.decode("utf-8"), request.headers.get("Stripe-Signature", ""),
                                              secret, tolerance)
        event = json.loads(body)
        event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        return _answer(400, "Not a valid Stripe event for this endpoint.")
    failpoint("webhook.after_signature")

    try:
        outcome = services.stripe_event_receive(event=event)
    except stripe.StripeError as exc:
        logger.warning("Stripe event %s (%s) not settled now (%s); Stripe will deliver it again", event_id,
                       event_type, exc)
        return _answer(503, "Could not act on the event now; please retry.")
    logger.info("Stripe event %s (%s) for %s: %s", event_id, event_type, obj.get("id"), outcome)
    return _answer(200, "OK")
