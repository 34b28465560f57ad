"""Rate-limit tests start counting from zero, in a fresh counting window.

Counts live in the database cache, where a browser test's (committed) requests from 127.0.0.1
outlive it; inside a test's transaction clearing them is undone with the rest of the test.
django-ratelimit counts in fixed windows (per counted value, with a jitter); a burst that straddled
the end of one would be counted in two halves and never reach the limit, so when the current
window is about to end, the test waits for the next.
"""

import time

from django.core.cache import caches
from django.test import RequestFactory
from django_ratelimit.core import get_usage


def counting_afresh(*, rate: str, value: str, margin_seconds: int = 10) -> None:
    """No counts yet, and the window counting `value` (an IP address or an email) has margin_seconds left."""
    caches["default"].clear()
    usage = get_usage(RequestFactory().get("/"), group="tests:window", key=lambda _group, _request: value, rate=rate)
    if usage["time_left"] < margin_seconds:
        time.sleep(usage["time_left"] + 1)
