"""The outbox: owe an email in the caller's transaction, send it at most once after commit, retry
and flag, and leave a note on the PaymentIntent that survives a restored database
(docs/decisions/0003-outbox-at-most-once.md, 0012-what-was-sent-survives-a-restore.md)."""

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import stripe_api
from billing.models import Order, OutboundEmail
from billing.queue import enqueue_after_commit
from billing.services.history import event_email_already_sent, event_email_bounced, event_email_sent
from config.failpoints import failpoint

logger = logging.getLogger(__name__)


def outbound_email_queue(*, kind: str, order: Order | None = None, user=None, recipient: str = "",
                         dedupe_key: str | None = None, subject: str = "", body: str = "",
                         in_reply_to: str = "", sent_by: str = "", send_reason: str = "",
                         facts: dict | None = None) -> OutboundEmail | None:
    """Owe the customer an email, in the caller's transaction; it is sent after commit.

    About an order (`order`), or for the password link about an account (`user`); a support
    reply carries its own `subject` and `body`, threaded under `in_reply_to`. With a
    `dedupe_key` (e.g. "renewal:<entitlement>:30d") the email is owed at most once for ever: if a
    row with that key exists, or another process inserts it at the same moment, nothing is added
    and None is returned. `sent_by` ("Ana from our support team") marks an email a person chose to
    send, with `send_reason` in the customer's words; the email then says who and why. `facts`
    are what the email states as decided now (e.g. an extension's days and new end).
    """
    fields = {"order": order, "user": user, "kind": kind, "next_attempt_at": timezone.now(),
              "recipient": recipient or (order.email if order is not None else user.email),
              "subject": subject[:300], "body": body, "in_reply_to": in_reply_to[:998],
              "sent_by": sent_by[:200], "send_reason": send_reason[:500], "facts": facts or {}}
    if dedupe_key is None:
        email = OutboundEmail.objects.create(**fields)
    else:
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives a duplicate
                email = OutboundEmail.objects.create(**fields, dedupe_key=dedupe_key)
        except IntegrityError:
            if OutboundEmail.objects.filter(dedupe_key=dedupe_key).exists():
                return None
            raise
    enqueue_after_commit("billing.tasks.send_outbound_email", email.id, task_name=f"email-{email.id}")
    return email


def _sent_note_key(kind: str) -> str:
    return f"backstop_sent_{kind}"  # Stripe metadata keys: at most 40 characters


def _owe_once(order: Order, kind: str, pi=None) -> OutboundEmail | None:
    """Owe one of the once-per-order emails (the caller knows it is not owed yet), unless Stripe's
    record says it already went.

    Our outbox rows are lost with a database restored from a backup; the note the sender left on
    the PaymentIntent is not, so the customer is not sent the same email twice
    (docs/decisions/0012-what-was-sent-survives-a-restore.md).
    """
    note = str(((pi.metadata or {}) if pi is not None else {}).get(_sent_note_key(kind)) or "")
    if not note:
        return outbound_email_queue(order=order, kind=kind)
    stamp, _, message_id = note.partition(" ")
    try:
        sent_at = datetime.fromisoformat(stamp)
    except ValueError:
        sent_at = timezone.now()
    email = OutboundEmail.objects.create(order=order, kind=kind, recipient=order.email,
                                         status=OutboundEmail.Status.SENT, sent_at=sent_at,
                                         esp_message_id=message_id[:255], stripe_noted_at=timezone.now())
    event_email_already_sent(email, stamp=stamp)
    return email


def _note_sent_in_stripe(email: OutboundEmail) -> bool:
    """Write on the order's PaymentIntent that this email went, with when and the ESP's id.

    Keyed per order and kind, so a retry repeats the same write; a resend of a noted email
    changes nothing (it is still the email that went).
    """
    pi_id = email.order.stripe_payment_intent_id if email.order_id else None
    if pi_id:
        stamp = (email.sent_at or timezone.now()).astimezone(UTC).isoformat(timespec="seconds")
        try:
            stripe_api.payment_intent_note(
                pi_id, idempotency_key=f"sent-{email.order.reference}-{email.kind}",
                metadata={_sent_note_key(email.kind): f"{stamp} {email.esp_message_id}"[:500]})
        except stripe_api.StripeError as exc:
            logger.warning("Could not note in Stripe that email %s went (the dispatcher retries): %s", email.id, exc)
            return False
    OutboundEmail.objects.filter(pk=email.pk).update(stripe_noted_at=timezone.now())
    return True


def outbound_emails_note_due(*, limit: int = 20) -> int:
    """Note in Stripe the once-per-order emails whose note was lost (Stripe down, worker killed)."""
    due = (OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT, stripe_noted_at__isnull=True,
                                        kind__in=OutboundEmail.ONCE_PER_ORDER,
                                        sent_at__lt=timezone.now() - timedelta(minutes=1))
           .select_related("order").order_by("sent_at")[:limit])
    noted = 0
    for email in due:
        if not _note_sent_in_stripe(email):
            break  # Stripe is down: the next run tries again
        noted += 1
    return noted


# Seconds to wait before each retry of a failed send; then we give up and support is told.
EMAIL_RETRY_DELAYS = [30, 120, 600, 1800, 3600, 3 * 3600]
# A send that has not finished after this long was interrupted (worker killed mid-call).
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=5)


def outbound_email_send(*, email_id: int) -> OutboundEmail | None:
    """Send one owed email at most once; failures are retried with backoff, then flagged.

    The row is claimed (pending -> sending) in its own transaction before the ESP is called and
    marked sent after. If the process dies in between we cannot know whether the ESP accepted
    it, so the dispatcher marks it `uncertain` for a person to check rather than risk a second
    copy (docs/decisions/0003-outbox-at-most-once.md).
    """
    from billing.emails import build_message  # here: billing.emails imports renewals, which imports these services

    now = timezone.now()
    with transaction.atomic():
        email = (OutboundEmail.objects.select_for_update(skip_locked=True)
                 .filter(pk=email_id, status=OutboundEmail.Status.PENDING).first())
        if email is None:
            return None  # sent, being sent, or given up: nothing to do
        email.status = OutboundEmail.Status.SENDING
        email.claimed_at = now
        email.attempts += 1
        email.save(update_fields=["status", "claimed_at", "attempts"])

    try:
        message = build_message(email)
        message.send()
    except Exception as exc:  # the ESP, the network or a template: all retried the same way
        logger.warning("Email %s (%s) attempt %s failed: %s", email.id, email.kind, email.attempts, exc)
        with transaction.atomic():
            email = OutboundEmail.objects.select_for_update().get(pk=email_id)
            email.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if email.attempts > len(EMAIL_RETRY_DELAYS):
                email.status = OutboundEmail.Status.FAILED
            else:
                email.status = OutboundEmail.Status.PENDING
                email.next_attempt_at = timezone.now() + timedelta(
                    seconds=EMAIL_RETRY_DELAYS[email.attempts - 1])
            email.save(update_fields=["last_error", "status", "next_attempt_at"])
        return email
    failpoint("outbox.after_esp_accepted")

    anymail_status = getattr(message, "anymail_status", None)
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().get(pk=email_id)
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        if anymail_status is not None:
            message_id = anymail_status.message_id
            email.esp_message_id = "" if message_id is None else str(message_id)
            email.esp_status = ",".join(sorted(anymail_status.status or []))
        email.save(update_fields=["status", "sent_at", "last_error", "esp_message_id", "esp_status"])
        if email.order_id is not None:
            event_email_sent(email)
    if email.kind in OutboundEmail.ONCE_PER_ORDER and email.stripe_noted_at is None:
        _note_sent_in_stripe(email)
    return email


def outbound_email_dispatch_due(*, limit: int = 100) -> dict:
    """Periodic safety net for the outbox: send what is due, flag interrupted sends."""
    now = timezone.now()
    stuck = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENDING,
                                         claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
    uncertain = stuck.update(status=OutboundEmail.Status.UNCERTAIN,
                             last_error="Sending was interrupted; check with the ESP before resending")
    due = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for email_id in due:
        result = outbound_email_send(email_id=email_id)
        sent += bool(result and result.status == OutboundEmail.Status.SENT)
    return {"due": len(due), "sent": sent, "uncertain": uncertain, "noted": outbound_emails_note_due()}


def outbound_email_record_esp_event(*, message_id: str, event_type: str, description: str = "") -> int:
    """What the ESP later tells us about a sent email (delivered, bounced, …); returns rows updated."""
    if not message_id:
        return 0
    email = OutboundEmail.objects.filter(esp_message_id=message_id).select_related("order").first()
    if email is None:
        return 0
    OutboundEmail.objects.filter(pk=email.pk).update(esp_status=event_type)
    if event_type in {"bounced", "rejected", "failed", "complained"} and email.order_id is not None:
        event_email_bounced(email, event_type=event_type, description=description)
    return 1
