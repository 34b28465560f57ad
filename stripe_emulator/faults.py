"""Scripted failures for the next N API requests that match a method and a path.

Kinds, in the order a request meets them:

* ``fail``: before anything is processed (and before the idempotency layer, like Stripe's rate
  limiter): answer 500 ``api_error``, 429 ``rate_limit``, or ``status: "timeout"`` = hold the
  connection ``seconds`` and then close it without a reply.
* ``latency``: sleep ``seconds`` once the idempotency key is claimed, i.e. while the request is in
  flight (a second request with the same key then gets 409).
* ``lose_response``: process the request fully (and save its idempotent result), then lose the
  reply: ``mode: "reset"`` closes the connection with a TCP reset, ``mode: "500"`` answers 500.
"""

import fnmatch
import itertools
import threading
from dataclasses import asdict, dataclass

KINDS = ("fail", "latency", "lose_response")


@dataclass
class Fault:
    id: str
    kind: str
    method: str = "*"
    path: str = "/v1/"
    count: int = 1
    status: str = "500"  # fail: "500" | "429" | "timeout"
    mode: str = "reset"  # lose_response: "reset" | "500"
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if any(ch in self.path for ch in "*?["):
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)


class FaultInjector:
    def __init__(self):
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)

    def add(self, spec: dict) -> Fault:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        fault = Fault(
            id=f"fault_{next(self.counter)}",
            kind=kind,
            method=str(spec.get("method", "*")).upper(),
            path=str(spec.get("path", "/v1/")),
            count=int(spec.get("count", 1)),
            status=str(spec.get("status", "500")),
            mode=str(spec.get("mode", "reset")),
            seconds=float(spec.get("seconds", 0)),
        )
        if fault.kind == "fail" and fault.status not in ("500", "429", "timeout"):
            raise ValueError('status must be "500", "429" or "timeout"')
        if fault.kind == "lose_response" and fault.mode not in ("reset", "500"):
            raise ValueError('mode must be "reset" or "500"')
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """Consume one use of the first matching fault of this kind."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == kind and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[dict]:
        with self.lock:
            return [asdict(fault) for fault in self.faults]

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
