"""Delivery reports from the email provider (anymail tracking webhooks) update the outbox."""

from anymail.signals import tracking
from django.dispatch import receiver

from outbox import services


@receiver(tracking, dispatch_uid="outbox.esp.record_tracking")
def record_tracking(sender, event, esp_name, **kwargs):
    # The report's words are the provider's (or whoever holds the webhook secret): text, without NUL,
    # which PostgreSQL cannot store or even look up; a message id that is not text matches none of ours.
    message_id = event.message_id if isinstance(event.message_id, str) and "\x00" not in event.message_id else ""
    description = str(event.description or "").replace("\x00", "")
    services.outbound_email_record_esp_event(message_id=message_id, event_type=event.event_type,
                                             description=description)
