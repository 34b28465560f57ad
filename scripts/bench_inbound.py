"""How long reading a support email takes, on the texts that used to hold a web worker (issue 15).

Prints seconds for the pattern Backstop used before (on the whole text) and for today's
`support.selectors.inbound_tokens` (bounded, linear), and what the webhook request itself does
with a 1 MB Postmark payload (parse, sender check, truncation; the one INSERT is not counted).
No database needed:  .venv/bin/python scripts/bench_inbound.py [--skip-old]
"""

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused")  # never connected to

import django

django.setup()

from anymail.webhooks.postmark import PostmarkInboundWebhookView  # noqa: E402

from support.inbound import sender_authentication  # noqa: E402
from support.selectors import INBOUND_SCAN_LIMIT, inbound_tokens  # noqa: E402

OLD_LAST4 = (r"(?:ending(?:\s+in)?|ends\s+(?:in|with)|last\s*(?:4|four)(?:\s+digits)?(?:\s+(?:are|is))?|[*xX•]{2,})"
             r"\D{0,12}(\d{4})\b")


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main():
    skip_old = "--skip-old" in sys.argv
    print(f"{'text':<28}{'chars':>10}{'before (s)':>12}{'now (s)':>10}")
    for label, unit in [("a run of x", "x"), ("spaces", " "), ("'ending '", "ending "), ("'BACKSTOP '", "BACKSTOP "),
                        ("'$'", "$"), ("digits", "1")]:
        for size in (5_000, 10_000, 20_000, 1_000_000):
            text = (unit * (size // len(unit) + 1))[:size]
            old_too = not skip_old and size <= 10_000  # the old pattern takes over a minute at 20,000
            before = f"{timed(lambda t=text: re.findall(OLD_LAST4, t, re.I)):.3f}" if old_too else "-"
            now = timed(lambda t=text: inbound_tokens(subject="Charged twice", text=t))
            print(f"{label:<28}{size:>10}{before:>12}{now:>10.4f}")

    payload = {"FromFull": {"Email": "ada@example.com", "Name": "Ada"}, "ToFull": [], "Subject": "Help",
               "TextBody": "My order BK-7Q2M-Q0D4. " + "x" * 1_000_000, "HtmlBody": "", "MessageID": "bench",
               "Headers": [{"Name": "Return-Path", "Value": "<ada@example.com>"},
                           {"Name": "Received-SPF", "Value": "Pass"}]}
    raw = json.dumps(payload)

    def request_work():
        event = PostmarkInboundWebhookView().esp_to_anymail_event(json.loads(raw))
        message = event.message
        sender_authentication(message, message.from_email.addr_spec)
        return (message.text or "")[:INBOUND_SCAN_LIMIT]

    print(f"1 MB webhook payload, request-side work: {timed(request_work):.3f} s")
    stored = request_work()
    print(f"matching its stored body (task side):   {timed(lambda: inbound_tokens(subject='Help', text=stored)):.3f} s")


if __name__ == "__main__":
    main()
