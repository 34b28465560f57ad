"""Support email arriving through the ESP's inbound webhook (django-anymail) becomes a case."""

from anymail.signals import inbound
from django.dispatch import receiver

from support import services


@receiver(inbound, dispatch_uid="support.inbound.receive")
def receive_support_email(sender, event, esp_name, **kwargs):
    message = event.message
    sender_address = message.from_email
    services.inbound_message_receive(
        message_id=event.event_id or message.get("Message-ID", "") or f"{esp_name}-{event.timestamp}",
        from_email=sender_address.addr_spec if sender_address else "",
        from_name=sender_address.display_name if sender_address else "",
        subject=message.subject or "",
        text=message.text or "",
    )
