"""Stripe's documented rate limits, enforced when asked (``--rate-limits test|live``; off by default).

From https://docs.stripe.com/rate-limits (December 2026): limits are requests per second per
account; overall 100 in live mode and 25 in test mode (sandboxes); each endpoint 25 unless stated
otherwise, the Search API 20. An endpoint is a named operation: ``POST /v1/payment_intents`` and
``GET /v1/payment_intents/{id}`` are two, and reads of different PaymentIntents count as one.

Each limit is a token bucket holding one second's worth of requests, refilled continuously: a burst
of up to the limit goes through at once, then the limit per second. A refused request takes no
token. Only requests made with a secret key are counted: Stripe documents the limits for an
account's API requests, and the requests Stripe.js makes from customers' browsers (publishable key)
are limited by Stripe per client, not against the account's budget.
"""

import collections
import threading
import time

MODES = {
    "live": {"overall": 100, "per_endpoint": 25},
    "test": {"overall": 25, "per_endpoint": 25},
}
# Endpoints with a documented limit lower than the per-endpoint one, by how their path ends.
SEARCH_PER_SECOND = 20

# The values Stripe sends in the Stripe-Rate-Limited-Reason header of a 429.
GLOBAL_RATE = "global-rate"
ENDPOINT_RATE = "endpoint-rate"


class _Bucket:
    __slots__ = ("at", "rate", "tokens")

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.tokens = float(rate)
        self.at = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now


class RateLimiter:
    def __init__(self, mode: str | None = None, clock=time.monotonic):
        self.lock = threading.Lock()
        self.clock = clock
        self.configure(mode=mode)

    def configure(self, *, mode: str | None = None, overall: int | None = None,
                  per_endpoint: int | None = None) -> None:
        """A mode ("test", "live"), explicit limits (a test's tiny budget), or neither: off."""
        if mode is not None and mode != "off":
            if mode not in MODES:
                raise ValueError(f"mode must be one of off, {', '.join(MODES)}")
            overall, per_endpoint = MODES[mode]["overall"], MODES[mode]["per_endpoint"]
        for value in (overall, per_endpoint):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError("limits are whole requests per second, at least 1")
        with self.lock:
            self.mode = mode if mode in MODES else ("custom" if overall or per_endpoint else "off")
            self.overall = overall
            self.per_endpoint = per_endpoint
            now = self.clock()
            self._overall = _Bucket(overall, now) if overall else None
            self._endpoints: dict[str, _Bucket] = {}
            self.refused: collections.Counter = collections.Counter()

    def _endpoint_limit(self, endpoint: str) -> int | None:
        if self.per_endpoint is None:
            return None
        if endpoint.endswith("/search"):
            return min(self.per_endpoint, SEARCH_PER_SECOND)
        return self.per_endpoint

    def admit(self, endpoint: str) -> str | None:
        """None if the request may go on (its tokens taken); else why not, as Stripe words it."""
        with self.lock:
            if self.mode == "off":
                return None
            now = self.clock()
            limit = self._endpoint_limit(endpoint)
            bucket = None
            if limit is not None:
                bucket = self._endpoints.get(endpoint)
                if bucket is None:
                    bucket = self._endpoints[endpoint] = _Bucket(limit, now)
                bucket.refill(now)
            if self._overall is not None:
                self._overall.refill(now)
            if bucket is not None and bucket.tokens < 1:
                reason = ENDPOINT_RATE
            elif self._overall is not None and self._overall.tokens < 1:
                reason = GLOBAL_RATE
            else:
                if bucket is not None:
                    bucket.tokens -= 1
                if self._overall is not None:
                    self._overall.tokens -= 1
                return None
            self.refused[endpoint] += 1
            return reason

    def status(self) -> dict:
        with self.lock:
            return {
                "mode": self.mode,
                "overall": self.overall,
                "per_endpoint": self.per_endpoint,
                "refused_total": sum(self.refused.values()),
                "refused": [{"endpoint": e, "count": n} for e, n in sorted(self.refused.items())],
            }
