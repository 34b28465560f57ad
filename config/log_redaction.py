"""Keep the secrets that travel in URLs out of logs.

A customer's status token is the path of their order's pages (/orders/<token>/, /checkout/<token>/pay/,
/api/orders/<token>/status): anyone holding it sees the order and its email address. Stripe's return
from the payment step adds ?payment_intent_client_secret=…, a sign-in link carries ?sesame=…, and a
password link is /account/password/reset/<uid>/<token>/, a Renew link carries ?renew=… and the
reminders opt-out is /account/reminders/off/<token>/. Request lines, Referer headers and Django's
"Not Found: /orders/…" warnings would all write them down.

`redact()` replaces them; `RedactingFilter` applies it to our log records (settings.LOGGING) and
`GunicornLogger` to gunicorn's access log (`--logger-class config.log_redaction.GunicornLogger`).
docs/deploy/nginx.conf has the same rules for nginx's access log.
"""

import json
import logging
import re
from datetime import datetime

from django.conf import settings
from gunicorn.glogging import Logger

_RULES = [
    # Paths whose segment after the prefix is a status token (not /orders/lookup/).
    (re.compile(r"(/(?:orders|checkout|api/orders)/)(?!lookup/)[^/?#\s\"']+"), r"\1[token]"),
    # Django's password link, /account/password/reset/<uidb64>/<token>/ (not .../sent/ or .../done/).
    (re.compile(r"(/account/password/reset/)(?!sent/|done/)[^/?#\s\"']+/[^/?#\s\"']+"), r"\1[token]"),
    # The one-click reminders opt-out, /account/reminders/off/<token>/.
    (re.compile(r"(/account/reminders/off/)[^/?#\s\"']+"), r"\1[token]"),
    # Query parameters that are secrets: Stripe's client secret, the sign-in link's token and the
    # Renew link's (it opens checkout as the customer).
    (re.compile(r"((?:^|[?&;\s])(?:payment_intent_client_secret|sesame|renew)=)[^&#\s\"']*"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with redact(); never drops a record."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with every access-log value (request line, path, query, headers) redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def access(self, resp, req, environ, request_time):
        # With LOG_FORMAT=json the access log is JSON lines too, with the request's id (the response's
        # X-Request-ID, config/logs.py), so one request's access line and app lines join up. Read when
        # each request is logged: the worker has loaded the settings by then.
        if not self.access_log_enabled or settings.LOG_FORMAT != "json":
            super().access(resp, req, environ, request_time)
            return
        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info(json.dumps({
            "time": datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3],  # as the app's lines (asctime)
            "level": "INFO", "logger": "gunicorn.access", "message": atoms["r"],
            "request_id": atoms.get("{x-request-id}o", ""), "order": "",
            "status": atoms["s"], "ms": atoms["M"], "bytes": atoms["B"], "remote_addr": atoms["h"],
            "referer": atoms["f"], "user_agent": atoms["a"],
        }))
