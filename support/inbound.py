"""Support email arriving through the ESP's inbound webhook (django-anymail) becomes a case.

The request only stores the email (bounded, with its attachments up to INBOUND_ATTACHMENTS_MAX_MB)
and says whether its From can be trusted; matching it to orders runs in the worker
(support.tasks.match_inbound_message). Whichever provider ANYMAIL_ESP names, anymail hands us the
same message; an email without a From is refused before it gets here (config/esp_webhooks.py).
"""

from email.utils import getaddresses

from anymail.signals import inbound
from django.dispatch import receiver

from accounts.models import normalize_email
from support import services
from support.attachments import Attachment
from support.selectors import INBOUND_SCAN_LIMIT


def _domain(address: str) -> str:
    return normalize_email(address).rpartition("@")[2]


def sender_authentication(message, from_email: str) -> tuple[bool, str]:
    """Can we believe the From? What Postmark gives us: the envelope sender (the Return-Path it
    prepends to Headers), its SPF verdict on that envelope (Received-SPF, which it adds above the
    sender's own headers) and the Reply-To. We ask for an SPF pass on an envelope domain aligned
    with the From's domain (equal, or a subdomain of it) and no Reply-To elsewhere. Postmark
    reports no DKIM or DMARC verdict, so a domain whose SPF authorises a shared relay can still be
    forged through that relay: the check narrows spoofing, it does not prove identity.
    """
    if not from_email or "@" not in from_email:
        return False, "no From address"
    from_domain = _domain(from_email)
    others = [addr for _, addr in getaddresses(message.get_all("Reply-To") or [])
              if addr and normalize_email(addr) != normalize_email(from_email)]
    if others:
        return False, f"Reply-To is {others[0][:80]}, not the From address"
    envelope = (message.envelope_sender or "").strip()
    if "@" not in envelope:
        return False, "no envelope sender (Return-Path)"
    envelope_domain = _domain(envelope)
    if envelope_domain != from_domain and not envelope_domain.endswith(f".{from_domain}"):
        return False, f"envelope sender {envelope[:80]} is not on the From's domain"
    spf = (message.get("Received-SPF") or "").strip()
    if not spf.lower().startswith("pass"):
        return False, f"SPF {spf.split(' ', 1)[0][:20].lower() or 'not reported'} for the envelope sender"
    return True, f"SPF pass for {envelope_domain[:100]}, aligned with the From"


@receiver(inbound, dispatch_uid="support.inbound.receive")
def receive_support_email(sender, event, esp_name, **kwargs):
    message = event.message
    sender_address = message.from_email
    from_email = sender_address.addr_spec if sender_address else ""
    authenticated, check = sender_authentication(message, from_email)
    # The provider's id is whatever its JSON said (anymail passes it on as it came): text or nothing.
    event_id = event.event_id if isinstance(event.event_id, str) else ""
    services.inbound_message_receive(
        message_id=_storable(event_id or message.get("Message-ID", "") or f"{esp_name}-{event.timestamp}"),
        from_email=_storable(from_email),
        from_name=_storable(sender_address.display_name if sender_address else ""),
        subject=_storable((message.subject or "")[:300]),
        text=_storable((message.text or "")[:INBOUND_SCAN_LIMIT]),
        sender_authenticated=authenticated,
        sender_check=_storable(check),
        # Postmark's MessageID above is its own; a reply threads on the email's Message-ID header.
        rfc_message_id=_storable(message.get("Message-ID", "") or ""),
        attachments=attachments_of(message),
    )


def attachments_of(message) -> list[Attachment]:
    """Every file the customer sent: attachments and images pasted into the text (inline parts)."""
    # An inline text part without a file name is the email's own text (some clients mark it so).
    parts = [part for part in message.walk() if part.get_content_maintype() != "multipart" and (
        part.is_attachment() or (part.is_inline() and (part.get_filename() or part.get_content_maintype() != "text")))]
    return [Attachment(filename=_storable(part.get_filename() or ""), content_type=part.get_content_type(),
                       content=part.get_content_bytes() or b"") for part in parts]


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL, which an email (or its Reply-To) may carry; it means nothing.
    return str(text).replace("\x00", "")
