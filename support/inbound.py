"""Support email arriving through the ESP's inbound webhook (django-anymail) becomes a case.

The request only stores the email (bounded) and says whether its From can be trusted; matching it
to orders runs in the worker (support.tasks.match_inbound_message).
"""

from email.utils import getaddresses

from anymail.signals import inbound
from django.dispatch import receiver

from accounts.models import normalize_email
from support import services
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
    )


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL, which an email (or its Reply-To) may carry; it means nothing.
    return str(text).replace("\x00", "")
