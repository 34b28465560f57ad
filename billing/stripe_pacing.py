"""Stripe's rate limits, from our side of the door (billing/stripe_api.py's HTTP client).

Stripe allows an account 100 requests a second in live mode (25 in test mode) and 25 a second per
endpoint, and answers 429 `rate_limit` past that. stripe-python sends a 429 again only when Stripe
adds `Stripe-Should-Retry: true` (a lock timeout); a rate-limit 429 does not, so without this a
burst would show customers "payment unavailable". Two things, per process
(docs/decisions/0030-pacing-stripe-calls.md):

* A 429 is waited out and the request sent again, with exponential backoff and jitter, when that
  is safe: a read (GET), or a request carrying an idempotency key (every POST: ours, or one the SDK
  made), which Stripe answers with the first reply if the first attempt got through after all.
  While a person waits on a page the waits are short and few, and all of one page's together stay
  within STRIPE_INTERACTIVE_TIMEOUT: the page then says what it says when Stripe cannot be reached.
* Background calls (the sweep, the task worker's settles and notes, commands) take a turn from a
  per-process budget of settings.STRIPE_BACKGROUND_RATE requests a second, and after any 429 in
  their process they pause (2 s, doubling to 30 s while 429s go on). Calls made while someone
  waits take no turn and never pause: checkout goes first.
"""

import contextlib
import contextvars
import logging
import random
import threading
import time

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

# Base waits before each new attempt after a 429 (each drawn between the base and half of it).
# Stripe counts requests per second: a person's call waits at most 2.75 s over four more tries
# (and all of one page's calls together never past STRIPE_INTERACTIVE_TIMEOUT); a background call
# up to 15 s over four, on top of the pause below.
INTERACTIVE_WAITS = (0.25, 0.5, 1.0, 1.0)
BACKGROUND_WAITS = (1.0, 2.0, 4.0, 8.0)
# After a 429, background calls in this process hold off this long, doubling while 429s go on.
PAUSE_FIRST_SECONDS = 2.0
PAUSE_MAX_SECONDS = 30.0


def _jittered(seconds: float) -> float:
    """Between half and all of `seconds`: clients limited together do not come back together."""
    return seconds * (0.5 + random.random() / 2)  # noqa: S311 - spreading retries, not a secret


class BackgroundBudget:
    """A token bucket of `rate` requests a second (a second's worth at most) for background calls,
    and a pause after any 429 that this process saw."""

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self.lock = threading.Lock()
        self.clock, self.sleep = clock, sleep
        self.tokens: float | None = None
        self.at = clock()
        self.paused_until = 0.0
        self.pause = 0.0

    def take_turn(self, rate: float) -> float:
        """Wait until a background call may go; return how long it waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(rate, rate if self.tokens is None else self.tokens + (now - self.at) * rate)
                self.at = now
                wait = self.paused_until - now
                if wait <= 0:
                    if self.tokens >= 1:
                        self.tokens -= 1
                        return waited
                    wait = (1 - self.tokens) / rate
            self.sleep(wait)
            waited += wait

    def limited(self) -> None:
        """Stripe answered 429 to a call of this process: background calls pause, longer each time
        a 429 comes after a pause has run out (429s to people's calls during a pause add nothing)."""
        with self.lock:
            now = self.clock()
            if now < self.paused_until:
                return
            self.pause = min(self.pause * 2, PAUSE_MAX_SECONDS) if self.pause else PAUSE_FIRST_SECONDS
            # Between the pause and half as long again, so that processes do not all come back at once.
            self.paused_until = now + self.pause * (1 + random.random() / 2)  # noqa: S311

    def answered(self) -> None:
        """A call went through: the next 429 starts the pauses from the first again."""
        if self.pause:
            with self.lock:
                self.pause = 0.0


BUDGET = BackgroundBudget()

# Seconds already spent waiting out 429s for the person being answered (one page, several calls).
_waited_for_person: contextvars.ContextVar = contextvars.ContextVar("stripe_waited_for_person", default=None)


def person_is_waiting() -> bool:
    return _waited_for_person.get() is not None


@contextlib.contextmanager
def person_waiting():
    token = _waited_for_person.set([0.0])
    try:
        yield
    finally:
        _waited_for_person.reset(token)


def _safe_to_repeat(method: str, headers) -> bool:
    return method.lower() == "get" or bool((headers or {}).get("Idempotency-Key"))


class PacedRequestsClient(stripe.RequestsClient):
    """stripe-python's requests-based client, paced as above. The SDK calls `request` once per
    attempt of its own (network errors, 409, 5xx), so every request that reaches Stripe is paced,
    pages of a list included."""

    def __init__(self, *, interactive: bool, timeout: float):
        super().__init__(timeout=timeout)
        self.interactive = interactive

    def request(self, method, url, headers, post_data=None):
        waits = INTERACTIVE_WAITS if self.interactive else BACKGROUND_WAITS
        waited = (self.interactive and _waited_for_person.get()) or [0.0]
        for attempt in range(len(waits) + 1):
            if not self.interactive:
                BUDGET.take_turn(settings.STRIPE_BACKGROUND_RATE)
            content, status, response_headers = super().request(method, url, headers, post_data)
            if status != 429:
                BUDGET.answered()
                return content, status, response_headers
            BUDGET.limited()
            if attempt == len(waits) or not _safe_to_repeat(method, headers):
                break
            wait = _jittered(waits[attempt])
            if self.interactive and waited[0] + wait > settings.STRIPE_INTERACTIVE_TIMEOUT:
                break
            logger.info("Stripe rate-limited %s %s; sending it again in %.2f s", method.upper(), url, wait)
            time.sleep(wait)
            waited[0] += wait
        return content, status, response_headers
