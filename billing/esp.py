"""Delivery reports from the email provider (anymail tracking webhooks) update the outbox."""

from anymail.signals import tracking
from django.dispatch import receiver

from billing import services


@receiver(tracking, dispatch_uid="billing.esp.record_tracking")
def record_tracking(sender, event, esp_name, **kwargs):
    services.outbound_email_record_esp_event(
        message_id=event.message_id or "", event_type=event.event_type, description=event.description or "")
