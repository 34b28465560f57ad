"""Idempotency keys as Stripe documents them for API v1.

* The first request with a key claims it; its status and body are saved once the endpoint has
  started executing (including 4xx card errors and 500s), and replayed for any later request with
  the same key and the same parameters, with ``Idempotent-Replayed: true``.
* The same key with other parameters (or another endpoint) is a 400 ``idempotency_error``.
* A key whose first request is still running answers 409, which Stripe's SDKs retry.
* Keys are scoped per API key and pruned after 24 hours of emulator time.
"""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .clock import Clock
from .errors import StripeError

TTL_SECONDS = 24 * 60 * 60


@dataclass
class Entry:
    fingerprint: str
    method: str
    path: str
    created: int
    status: int | None = None  # None while the first request is still in flight
    body: bytes = b""
    request_id: str = ""


class IdempotencyCache:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self.lock = threading.Lock()

    def claim(self, scope: str, key: str, method: str, path: str, params: dict) -> Entry | None:
        """Return a finished entry to replay, or None after claiming the key for this request."""
        fingerprint = json.dumps(params, sort_keys=True)
        now = self.clock.now()
        with self.lock:
            self._prune(now)
            entry = self.entries.get((scope, key))
            if entry is not None and now - entry.created >= TTL_SECONDS:
                del self.entries[(scope, key)]
                entry = None
            if entry is None:
                self.entries[(scope, key)] = Entry(fingerprint, method, path, now)
                return None
            if entry.path != path or entry.method != method:
                raise StripeError(
                    400,
                    f"Keys for idempotent requests can only be used for the same endpoint they "
                    f"were first used for ('{entry.method} {entry.path}' vs '{method} {path}'). "
                    f"Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    type="idempotency_error",
                    saved=False,
                )
            if entry.fingerprint != fingerprint:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they "
                    f"were first used with. Try using a key other than '{key}' if you meant to "
                    "execute a different request.",
                    type="idempotency_error",
                    saved=False,
                )
            if entry.status is None:
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this Stripe-Idempotency-"
                    "Key (that probably means you submitted twice, and the other request is still "
                    f"going through): {key}. Please try again later.",
                    type="idempotency_error",
                    code="idempotency_key_in_use",
                    saved=False,
                )
            return entry

    def save(self, scope: str, key: str, status: int, body: bytes, request_id: str) -> None:
        with self.lock:
            entry = self.entries.get((scope, key))
            if entry is not None:
                entry.status, entry.body, entry.request_id = status, body, request_id

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request never reached the endpoint (validation failed)."""
        with self.lock:
            entry = self.entries.get((scope, key))
            if entry is not None and entry.status is None:
                del self.entries[(scope, key)]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def _prune(self, now: int) -> None:
        # Entries are in claim order, which is emulator-time order: expired ones are at the front.
        while self.entries:
            first = next(iter(self.entries.values()))
            if now - first.created < TTL_SECONDS or first.status is None:
                break
            self.entries.popitem(last=False)
