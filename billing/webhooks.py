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
import re
import time

import stripe
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import WebhookEndpoint

from billing import services
from config.failpoints import failpoint
from config.queries import by_unique_key

logger = logging.getLogger(__name__)

# Stripe's event payloads are a few KB; the largest real ones (an invoice or checkout session with
# many lines) stay well under 256 KiB, so nothing Stripe sends is refused. Anything bigger is not
# from Stripe and would only cost memory. Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is no
# substitute: it is site-wide, much larger, and only looks at the declared Content-Length, which a
# client can understate.
WEBHOOK_MAX_BODY_BYTES = 256 * 1024


# Stripe stamps each event with the moment it was created, by Stripe's clock. Clocks drift a little;
# an event further ahead than this was not created by Stripe now. (The signature's tolerance is
# about when the delivery was signed, and only looks backwards: it cannot see this.) Old events are
# fine: Stripe retries a delivery for days.
EVENT_MAX_SECONDS_AHEAD = 300

# Stripe's ids: a type prefix and letters, digits or underscores. Anything else is not Stripe's and
# must not reach a query (PostgreSQL refuses a NUL in text; a long id would not fit the event log).
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


class NotAStripeEvent(ValueError):
    pass


def _stripe_id_or_none(value, name: str) -> None:
    if value is not None and not (isinstance(value, str) and _STRIPE_ID.fullmatch(value)):
        raise NotAStripeEvent(f"{name} is not a Stripe id")


def event_fields(event) -> tuple[str, str, dict]:
    """The id, type and object of a signed event, once its shape is Stripe's; NotAStripeEvent if not.

    Only what Backstop reads from the event is checked: which order it concerns (settle then reads
    the payment from Stripe itself, never from the event's copy of it).
    """
    if not isinstance(event, dict):
        raise NotAStripeEvent("the event is not an object")
    event_id, event_type, created, data = event.get("id"), event.get("type"), event.get("created"), event.get("data")
    if event_id is None or not isinstance(event_type, str) or len(event_type) > 100:
        raise NotAStripeEvent("no event id or type")
    _stripe_id_or_none(event_id, "id")
    if type(created) is not int:
        raise NotAStripeEvent("created is not a timestamp")
    if created > time.time() + EVENT_MAX_SECONDS_AHEAD:
        raise NotAStripeEvent(f"created {created} is in the future")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise NotAStripeEvent("data.object is not an object")
    _stripe_id_or_none(obj.get("id"), "data.object.id")
    # A status may be null (stripe-python types Refund.status as Optional[str]); never another type.
    if not isinstance(obj.get("object", ""), str) or not isinstance(obj.get("status") or "", str):
        raise NotAStripeEvent("data.object.object or status is not a string")
    payment_intent = obj.get("payment_intent")
    _stripe_id_or_none(payment_intent.get("id") if isinstance(payment_intent, dict) else payment_intent,
                       "data.object.payment_intent")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise NotAStripeEvent("data.object.metadata is not an object")
    reference = (metadata or {}).get("reference")
    if reference is not None and not (isinstance(reference, str) and len(reference) <= 500 and "\x00" not in reference):
        raise NotAStripeEvent("data.object.metadata.reference is not a short string")
    return event_id, event_type, obj


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
    endpoint = by_unique_key(
        WebhookEndpoint.objects.filter(djstripe_uuid=uuid).values_list("secret", "djstripe_tolerance"))
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
        event_id, event_type, obj = event_fields(event)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, RecursionError) as exc:
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
