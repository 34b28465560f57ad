"""Access events for the product behind the shop: signed webhooks in the Standard Webhooks format.

accounts.access writes one AccessDelivery row per change, in the change's own transaction, and
queues its delivery once that commits. Here each row is POSTed to ACCESS_WEBHOOK_URL, signed with
ACCESS_WEBHOOK_SECRET (`webhook-id`, `webhook-timestamp`, `webhook-signature`), until the product
answers 2xx:
- at least once: a row is pending until a 2xx; a lost task, a crash or a failed attempt leaves it
  pending, and the dispatcher (every minute, accounts/schedules.py) sends what is due. The product
  deduplicates by `webhook-id`, which stays the same on every retry;
- in order per customer: only a customer's oldest pending event is ever sent, so a later one waits
  for the earlier (each event also carries the customer's whole state, so even a product that
  skips one converges on the next);
- with backoff: after a failure the next attempt waits longer (BACKOFF), up to an hour, for ever;
  support sees every row's status, attempts and last answer in the console.

With ACCESS_WEBHOOK_URL empty nothing is written and nothing is sent: the in-process signals are
the only news of a change (docs/integrating.md).
"""

import json
import logging
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.models import AccessDelivery
from config.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
# Long enough for one POST (TIMEOUT_SECONDS) and its bookkeeping; a sender killed mid-way leaves
# the row to the next one after this.
CLAIM = timedelta(seconds=60)
# The wait after the 1st, 2nd, … failed attempt; the last repeats.
BACKOFF = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
           timedelta(hours=1)]


def enabled() -> bool:
    """Is there a product to tell? Without ACCESS_WEBHOOK_URL no delivery is recorded at all."""
    return bool(settings.ACCESS_WEBHOOK_URL)


def access_delivery_record(*, event_type: str, user, data: dict) -> AccessDelivery | None:
    """Write the delivery of one access event (in the caller's transaction) and queue it after commit."""
    if not enabled():
        return None
    now = timezone.now()
    payload = {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    delivery = AccessDelivery.objects.create(event_id=f"msg_{uuid.uuid4().hex}", event_type=event_type,
                                             user=user, email=user.email, payload=payload, next_attempt_at=now)
    enqueue_after_commit("accounts.tasks.deliver_access_events", user.id, task_name=f"access-event-{delivery.id}")
    return delivery


def access_deliveries_send(*, user_id: int, now=None) -> int:
    """Send this customer's due events, oldest first, stopping at the first that fails or is not
    due yet; returns how many were delivered. Safe to run twice at once (a row is claimed first)."""
    if not enabled():
        return 0
    delivered = 0
    while True:
        moment = now or timezone.now()
        head = (AccessDelivery.objects.filter(user_id=user_id, status=AccessDelivery.Status.PENDING)
                .order_by("id").first())
        if head is None or head.next_attempt_at > moment or not _claim(head, moment):
            return delivered
        if not _attempt(head, moment):
            return delivered
        delivered += 1


def access_deliveries_dispatch_due(*, now=None, limit: int = 200) -> dict:
    """The schedule's pass: every customer with a pending event that is due gets a send."""
    moment = now or timezone.now()
    user_ids = (AccessDelivery.objects.filter(status=AccessDelivery.Status.PENDING, next_attempt_at__lte=moment)
                .order_by().values_list("user_id", flat=True).distinct()[:limit])
    counts = {"customers": 0, "delivered": 0}
    for user_id in list(user_ids):
        counts["customers"] += 1
        counts["delivered"] += access_deliveries_send(user_id=user_id, now=now)
    return counts


def _claim(delivery: AccessDelivery, now) -> bool:
    return bool(AccessDelivery.objects.filter(pk=delivery.pk, status=AccessDelivery.Status.PENDING)
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .update(claimed_until=now + CLAIM))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would follow it as a GET without the body."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _attempt(delivery: AccessDelivery, now) -> bool:
    """POST one event, signed; record what the product answered. True on a 2xx."""
    body = json.dumps(delivery.payload, separators=(",", ":"))
    sent_at = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Backstop-Webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(settings.ACCESS_WEBHOOK_SECRET).sign(delivery.event_id, sent_at, body),
    }
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL from our settings, checked at startup
        settings.ACCESS_WEBHOOK_URL, data=body.encode(), headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status, answer = response.status, response.read(200)
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read(200)
    except (OSError, ValueError) as exc:
        status, answer = None, str(exc).encode()
    ok = status is not None and 200 <= status < 300
    outcome = (f"HTTP {status}" if status else "No answer") + (
        f": {answer.decode(errors='replace').strip()}" if answer.strip() else "")
    attempts = delivery.attempts + 1
    done = ({"status": AccessDelivery.Status.DELIVERED, "delivered_at": now} if ok else
            {"next_attempt_at": now + BACKOFF[min(attempts, len(BACKOFF)) - 1]})
    AccessDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1, last_attempt_at=now,
                                                         last_response=outcome[:500], claimed_until=None, **done)
    if not ok:
        logger.warning("Access event %s (%s) not delivered: %s", delivery.event_id, delivery.event_type, outcome)
    return ok


def access_deliveries_backlog() -> dict:
    """Access events not yet delivered to the product: how many, and when the oldest was written
    (for monitors; cheap on the status index)."""
    pending = AccessDelivery.objects.filter(status=AccessDelivery.Status.PENDING).order_by()
    totals = pending.aggregate(count=Count("id"), oldest=Min("created_at"))
    return {"count": totals["count"], "oldest_at": totals["oldest"]}
