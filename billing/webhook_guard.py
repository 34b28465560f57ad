"""A guard in front of dj-stripe's webhook view.

dj-stripe writes every request body it is given to a WebhookEventTrigger row before it checks
the signature, so anyone who can reach the URL could otherwise make us store whatever they send.
The guard turns away what can never be a Stripe event before dj-stripe sees it: bodies over a
size no event reaches, and posts to a path that is not one of our endpoints. Everything else goes
to dj-stripe's own view unchanged (signature check, dedupe, processing).
"""

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import WebhookEndpoint
from djstripe.views import ProcessWebhookView

# Stripe's event payloads are a few KB; the largest real ones (an invoice or checkout session with
# many lines) stay well under 256 KiB, so nothing Stripe sends is refused. Anything bigger is not
# from Stripe and would only cost memory and a database row. Django's DATA_UPLOAD_MAX_MEMORY_SIZE
# (2.5 MB) is no substitute: it is site-wide, much larger, and only looks at the declared
# Content-Length, which a client can understate.
WEBHOOK_MAX_BODY_BYTES = 256 * 1024

_djstripe_webhook = ProcessWebhookView.as_view()


def _too_large():
    return HttpResponse(
        f"Request body over {WEBHOOK_MAX_BODY_BYTES} bytes.\n", status=413, content_type="text/plain"
    )


# Middleware and the request handler look at the routed view, not at dj-stripe's behind it, so it
# carries dj-stripe's own markings: Stripe sends no CSRF token or login, and dj-stripe manages its
# own transactions so that a failed event's trigger row survives for debugging.
@csrf_exempt
@login_not_required
@transaction.non_atomic_requests
@require_POST
def stripe_webhook(request, uuid):
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponseBadRequest("Malformed Content-Length.\n", content_type="text/plain")
    if declared_length > WEBHOOK_MAX_BODY_BYTES:
        return _too_large()
    if not WebhookEndpoint.objects.filter(djstripe_uuid=uuid).exists():
        return HttpResponseNotFound("Unknown webhook endpoint.\n", content_type="text/plain")

    # Under WSGI Django never reads past Content-Length, but an ASGI server hands over the whole
    # body it received, whatever the header said: read one byte past the limit, never more.
    body = request.read(WEBHOOK_MAX_BODY_BYTES + 1)
    if len(body) > WEBHOOK_MAX_BODY_BYTES:
        return _too_large()
    # request.body refuses to work once the stream has been read; this is the cache it would have
    # filled, so dj-stripe reads exactly the bytes checked here.
    request._body = body
    return _djstripe_webhook(request, uuid=uuid)
