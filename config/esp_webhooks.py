"""The email provider's webhooks (django-anymail's views), refusing what they cannot read with a 400.

Anymail's views parse the provider's JSON without asking whether it is JSON, or of the shape they
expect: a body that is not UTF-8 or not JSON, a number where an object goes, a delivery report
posted to the inbound URL, a TextBody that is not text, all ended as a 500 (found by
tests/fuzz/test_fuzz_esp_webhooks.py).
Only the parsing is covered: a receiver of ours that fails still fails loudly (a 500, and the
provider retries), since hiding our own bug behind a 400 would lose the message.
"""

import logging

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from django.urls import path

logger = logging.getLogger(__name__)

# What a malformed payload raises inside anymail's parse_events (json, then dict and list access), and
# the standard library's email package on a part whose payload is not text (UnboundLocalError).
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, UnboundLocalError,
               AnymailConfigurationError)


class RefuseUnreadablePayloads:
    def parse_events(self, request):
        try:
            events = super().parse_events(request)
            for event in events:
                message = getattr(event, "message", None)  # inbound mail, which anymail decodes lazily:
                if message is not None:  # read now what support/inbound.py reads (TextBody {} broke it there)
                    _ = (message.from_email, message.subject, message.text, message.html, message.envelope_sender)
            return events
        except _UNREADABLE as exc:
            # A 400 tells the sender it was refused; a configuration mistake (a provider's webhook
            # pointed at the wrong URL) shows in this log line.
            logger.warning("%s webhook refused, payload unreadable: %s: %s", self.esp_name, type(exc).__name__,
                           str(exc)[:200])
            raise AnymailWebhookValidationFailure(f"Unreadable {self.esp_name} webhook payload.") from None


def strict(pattern):
    """The same URL, name and view, with parsing failures answered 400."""
    view_class = pattern.callback.view_class
    strict_class = type(f"Strict{view_class.__name__}", (RefuseUnreadablePayloads, view_class), {})
    return path(str(pattern.pattern), strict_class.as_view(), name=pattern.name)
