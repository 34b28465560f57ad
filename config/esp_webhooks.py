"""The email provider's webhooks (django-anymail's views): only the configured provider's, refusing
what they cannot read with a 400, and taking support mail with its attachments.

Which provider: ANYMAIL_ESP, any that anymail has webhooks for (postmark, mailgun, sendgrid, ...);
its own settings come from the environment by anymail's names (config/settings.py). Each view is
built once here, at boot, so a provider setting that is missing stops start-up instead of
answering every delivery with a 500.

Anymail's views parse the provider's JSON without asking whether it is JSON, or of the shape they
expect: a body that is not UTF-8 or not JSON, a number where an object goes, a delivery report
posted to the inbound URL, a TextBody that is not text, all ended as a 500 (found by
tests/fuzz/test_fuzz_esp_webhooks.py). An inbound email without a sender used to become a case
nobody could answer ("Email from : (no subject)"): it is refused with a 400.
Only the parsing is covered: a receiver of ours that fails still fails loudly (a 500, and the
provider retries), since hiding our own bug behind a 400 would lose the message.

Size: Django refuses (400) any request body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which a
support email with a screenshot passes. That guard stays for every other URL; the inbound webhook,
once the shared secret is checked, takes up to inbound_request_limit() (decision 0027).
"""

import io
import logging

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import inbound
from anymail.webhooks.base import AnymailBasicAuthMixin
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.urls import path, re_path
from django.urls.resolvers import RegexPattern

logger = logging.getLogger(__name__)

MB = 1024 * 1024

# What a malformed payload raises inside anymail's parse_events (json, then dict and list access), and
# the standard library's email package on a part whose payload is not text (UnboundLocalError).
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, UnboundLocalError,
               AnymailConfigurationError)


def inbound_request_limit() -> int:
    """The largest inbound webhook request taken, in bytes: twice the attachments cap (base64 in the
    provider's JSON grows them by a third; the email's text and HTML come on top), so an email over
    the cap still arrives and its case says what was not kept. Never below Django's own limit."""
    return max(2 * settings.INBOUND_ATTACHMENTS_MAX_MB * MB, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


class RefuseUnreadablePayloads:
    def post(self, request, *args, **kwargs):
        if self.signal is inbound:
            too_large = self._read_large_body(request)
            if too_large is not None:
                return too_large
        return super().post(request, *args, **kwargs)

    def _read_large_body(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or length):
            return None  # Django reads it as for any other request
        if isinstance(self, AnymailBasicAuthMixin):
            # Only the provider, holding the shared secret, gets us to hold this much in memory.
            AnymailBasicAuthMixin.validate_request(self, request)
        limit = inbound_request_limit()
        if length > limit:
            logger.warning("%s inbound email refused: %s bytes, over the %s-byte limit (INBOUND_ATTACHMENTS_MAX_MB)",
                           self.esp_name, length, limit)
            return HttpResponse(f"An inbound email is taken up to {limit // MB} MB.\n", status=413,
                                content_type="text/plain")
        if request.content_type == "multipart/form-data":
            return None  # Django streams its files to disk and limits only its text fields
        # As HttpRequest.body would have read it, had its limit been ours: the body, and a stream over it
        # for request.POST (a form-encoded provider).
        body = request.read(limit + 1)
        if len(body) > limit:
            return HttpResponse(status=413)
        request._body = body
        request._stream = io.BytesIO(body)
        return None

    def parse_events(self, request):
        try:
            events = super().parse_events(request)
            for event in events:
                message = getattr(event, "message", None)  # inbound mail, which anymail decodes lazily:
                if message is not None:  # read now what support/inbound.py reads (TextBody {} broke it there)
                    _ = (message.from_email, message.subject, message.text, message.html, message.envelope_sender)
        except _UNREADABLE as exc:
            # A 400 tells the sender it was refused; a configuration mistake (a provider's webhook
            # pointed at the wrong URL) shows in this log line.
            logger.warning("%s webhook refused, payload unreadable: %s: %s", self.esp_name, type(exc).__name__,
                           str(exc)[:200])
            raise AnymailWebhookValidationFailure(f"Unreadable {self.esp_name} webhook payload.") from None
        for event in events:
            message = getattr(event, "message", None)
            if message is not None and "@" not in (message.from_email.addr_spec if message.from_email else ""):
                logger.warning("%s inbound email refused: no sender address", self.esp_name)
                raise AnymailWebhookValidationFailure(f"{self.esp_name} inbound email without a sender.")
        return events


def strict(pattern):
    """The same URL, name and view, with parsing failures answered 400."""
    view_class = pattern.callback.view_class
    strict_class = type(f"Strict{view_class.__name__}", (RefuseUnreadablePayloads, view_class), {})
    # Built once now: a provider setting the view needs (a signing key) and lacks stops start-up.
    strict_class()
    route = re_path if isinstance(pattern.pattern, RegexPattern) else path  # Mailgun's is a regular expression
    return route(str(pattern.pattern), strict_class.as_view(), name=pattern.name)


def esp_webhook_urls(esp: str | None = None):
    """Only the configured ESP's webhooks, and none without the shared secret: a request to any
    other provider's URL, or to ours before it is secured, finds nothing here."""
    esp = settings.ANYMAIL_ESP if esp is None else esp
    if not esp or not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return [], "anymail"
    prefix = f"{esp}_"
    patterns = [p for p in anymail_urls.urlpatterns if (p.name or "").startswith(prefix)]
    if not patterns:
        known = sorted({(p.name or "").rsplit("_", 2)[0] for p in anymail_urls.urlpatterns
                        if (p.name or "").endswith("_inbound_webhook")})
        raise ImproperlyConfigured(f"ANYMAIL_ESP={esp!r}: anymail has no webhooks for it (inbound mail from: "
                                   f"{', '.join(known)}).")
    return [strict(p) for p in patterns], "anymail"
