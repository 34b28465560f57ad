"""Billing's side of the outbox (outbox/ sends; these say what an order's email means): owe a
once-per-order email unless Stripe's record says it went, note on the PaymentIntent that it went,
and put sends and bounces on the order's timeline
(docs/decisions/0003-outbox-at-most-once.md, 0012-what-was-sent-survives-a-restore.md)."""

import logging
from datetime import UTC, datetime

from django.utils import timezone

from billing import stripe_api
from billing.models import Order
from billing.services.history import event_email_already_sent, event_email_bounced, event_email_sent
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue, outbound_email_record_sent

logger = logging.getLogger(__name__)


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
        return outbound_email_queue(about=order, kind=kind)
    stamp, _, message_id = note.partition(" ")
    try:
        sent_at = datetime.fromisoformat(stamp)
    except ValueError:
        sent_at = timezone.now()
    email = outbound_email_record_sent(kind=kind, about=order, recipient=order.email, sent_at=sent_at,
                                       esp_message_id=message_id, followed_up=True)
    event_email_already_sent(email, stamp=stamp)
    return email


def order_email_noted_in_stripe(email: OutboundEmail) -> bool:
    """After a once-per-order email went: write on the order's PaymentIntent that it went, with when
    and the ESP's id (the outbox calls it, and again from its dispatcher until it returns True).

    Keyed per order and kind, so a retry repeats the same write; a resend of a noted email
    changes nothing (it is still the email that went).
    """
    order = email.about
    pi_id = order.stripe_payment_intent_id if order is not None else None
    if pi_id:
        stamp = (email.sent_at or timezone.now()).astimezone(UTC).isoformat(timespec="seconds")
        try:
            stripe_api.payment_intent_note(
                pi_id, idempotency_key=f"sent-{order.reference}-{email.kind}",
                metadata={_sent_note_key(email.kind): f"{stamp} {email.esp_message_id}"[:500]})
        except stripe_api.StripeError as exc:
            logger.warning("Could not note in Stripe that email %s went (the dispatcher retries): %s", email.id, exc)
            return False
    return True


def order_email_sent(email: OutboundEmail) -> None:
    """In the transaction that marks an email about an order sent: the line on its timeline."""
    if email.about_id is not None:
        event_email_sent(email)


def order_email_undelivered(email: OutboundEmail, *, event_type: str, description: str = "") -> None:
    if email.about_id is not None:
        event_email_bounced(email, event_type=event_type, description=description)
