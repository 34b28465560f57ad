"""Webhook delivery: signed like Stripe, from background threads, retried with backoff.

Every (event, endpoint) pair is one delivery. A first attempt passes through the webhook faults
(pause, drop, duplicate, delay, reorder) before it is queued; retries go straight to the queue. A
few worker threads send what is due, so a slow endpoint never blocks the API nor the others, and
deliveries arrive in no guaranteed order, as with Stripe.
"""

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .app import Emulator

log = logging.getLogger("stripe_emulator.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    event_id: str
    endpoint_id: str
    generation: int
    attempt: int = 1
    duplicate: bool = False
    resend: bool = False


@dataclass
class Faults:
    drop: int = 0
    duplicate: int = 0
    delays: list = field(default_factory=list)  # [remaining, seconds]
    reorder_remaining: int = 0
    reorder_mode: str = "reverse"
    reorder_batch: list = field(default_factory=list)


class WebhookDispatcher:
    def __init__(self, emu: "Emulator", schedule: list[float], timeout: float, workers: int = 4):
        self.emu = emu
        self.schedule = schedule
        self.timeout = timeout
        self.workers = workers
        self.cond = threading.Condition()
        self.heap: list = []
        self.counter = itertools.count()
        self.paused = False
        self.held: list[Delivery] = []
        self.faults = Faults()
        self.log: deque = deque(maxlen=20000)
        self.log_counter = itertools.count(1)
        self.generation = 0
        self.in_flight = 0
        self.stopping = False
        self.threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"webhooks-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(timeout=2)

    def reset(self) -> None:
        with self.cond:
            self.generation += 1  # deliveries already being sent are ignored when they finish
            self.heap.clear()
            self.held.clear()
            self.paused = False
            self.faults = Faults()
            self.log.clear()
            self.cond.notify_all()

    def status(self) -> dict:
        with self.cond:
            return {
                "paused": self.paused,
                "queued": len(self.heap),
                "held": len(self.held) + len(self.faults.reorder_batch),
                "in_flight": self.in_flight,
                "faults": {
                    "drop": self.faults.drop,
                    "duplicate": self.faults.duplicate,
                    "delay": [list(d) for d in self.faults.delays],
                    "reorder": self.faults.reorder_remaining,
                },
            }

    # -- control ---------------------------------------------------------------------------------

    def pause(self) -> None:
        with self.cond:
            self.paused = True

    def resume(self) -> None:
        with self.cond:
            self.paused = False
            held, self.held = self.held, []
        self._admit(held, skip_pause=True)

    def drop_next(self, count: int) -> None:
        with self.cond:
            self.faults.drop += count

    def duplicate_next(self, count: int) -> None:
        with self.cond:
            self.faults.duplicate += count

    def delay_next(self, count: int, seconds: float) -> None:
        with self.cond:
            self.faults.delays.append([count, seconds])

    def reorder_next(self, count: int, mode: str) -> None:
        with self.cond:
            self.faults.reorder_remaining = count
            self.faults.reorder_mode = mode
            self.faults.reorder_batch = []

    def flush_reorder(self) -> None:
        with self.cond:
            batch, self.faults.reorder_batch = self.faults.reorder_batch, []
            self.faults.reorder_remaining = 0
            self._release_batch(batch)

    def enqueue(self, event: dict, endpoint_ids: list[str], resend: bool = False) -> None:
        deliveries = [
            Delivery(event["id"], endpoint_id, self.generation, resend=resend)
            for endpoint_id in endpoint_ids
        ]
        self._admit(deliveries)

    # -- queueing --------------------------------------------------------------------------------

    def _admit(self, deliveries: list[Delivery], skip_pause: bool = False) -> None:
        with self.cond:
            now = time.monotonic()
            for delivery in deliveries:
                if self.paused and not skip_pause:
                    self.held.append(delivery)
                    continue
                if self.faults.drop > 0:
                    self.faults.drop -= 1
                    self._record(delivery, "dropped", None, "dropped by fault injection", 0)
                    self._finish(delivery, succeeded=False)
                    continue
                copies = [delivery]
                if self.faults.duplicate > 0:
                    self.faults.duplicate -= 1
                    copies.append(
                        Delivery(delivery.event_id, delivery.endpoint_id, delivery.generation,
                                 duplicate=True)
                    )
                due = now
                if self.faults.delays:
                    self.faults.delays[0][0] -= 1
                    due = now + self.faults.delays[0][1]
                    if self.faults.delays[0][0] <= 0:
                        self.faults.delays.pop(0)
                if self.faults.reorder_remaining > 0:
                    self.faults.reorder_batch.extend(copies)
                    self.faults.reorder_remaining -= 1
                    if self.faults.reorder_remaining == 0:
                        batch, self.faults.reorder_batch = self.faults.reorder_batch, []
                        self._release_batch(batch)
                    continue
                for copy in copies:
                    heapq.heappush(self.heap, (due, next(self.counter), [copy]))
            self.cond.notify_all()

    def _release_batch(self, batch: list[Delivery]) -> None:
        if not batch:
            return
        if self.faults.reorder_mode == "shuffle":
            random.shuffle(batch)
        else:
            batch.reverse()
        # One queue item, sent in order by one worker, so the chosen order is the arrival order.
        heapq.heappush(self.heap, (time.monotonic(), next(self.counter), batch))
        self.cond.notify_all()

    def _work(self) -> None:
        while True:
            with self.cond:
                while not self.stopping:
                    if self.heap and self.heap[0][0] <= time.monotonic():
                        break
                    wait = self.heap[0][0] - time.monotonic() if self.heap else None
                    self.cond.wait(timeout=wait)
                if self.stopping:
                    return
                _, _, batch = heapq.heappop(self.heap)
                self.in_flight += 1
            try:
                for delivery in batch:
                    self._attempt(delivery)
            except Exception:
                log.exception("webhook worker failed")
            finally:
                with self.cond:
                    self.in_flight -= 1

    # -- sending ---------------------------------------------------------------------------------

    def _attempt(self, delivery: Delivery) -> None:
        emu = self.emu
        with emu.lock:
            if delivery.generation != self.generation:
                return
            event = emu.store["event"].get(delivery.event_id)
            endpoint = emu.store["webhook_endpoint"].get(delivery.endpoint_id)
            if event is None or endpoint is None:
                return
            # Rendered in the endpoint's version, as Stripe does (one made without one: the account's).
            payload = json.dumps({**event, "api_version": endpoint.get("api_version") or event["api_version"]},
                                 indent=2).encode()
            url = endpoint["url"]
            secret = emu.store.private[endpoint["id"]]["secret"]
        # Signed with wall-clock time, like Stripe, so receivers' timestamp tolerance still holds
        # after the emulator clock has been advanced.
        header = sign(payload, secret, int(time.time()))
        started = time.monotonic()
        status, error = self._post(url, payload, header)
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        succeeded = status is not None and 200 <= status < 300
        with emu.lock:
            if delivery.generation != self.generation:
                return
            outcome = "succeeded" if succeeded else "failed"
            self._record(delivery, outcome, status, error, elapsed_ms)
            if succeeded:
                self._finish(delivery, succeeded=True)
                return
            if delivery.attempt <= len(self.schedule):
                retry = Delivery(
                    delivery.event_id,
                    delivery.endpoint_id,
                    delivery.generation,
                    attempt=delivery.attempt + 1,
                    duplicate=delivery.duplicate,
                    resend=delivery.resend,
                )
                due = time.monotonic() + self.schedule[delivery.attempt - 1]
                with self.cond:
                    heapq.heappush(self.heap, (due, next(self.counter), [retry]))
                    self.cond.notify_all()
            else:
                self._finish(delivery, succeeded=False)

    def _post(self, url: str, payload: bytes, signature: str) -> tuple[int | None, str | None]:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout)
        try:
            connection.request(
                "POST",
                path,
                body=payload,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature,
                    "User-Agent": USER_AGENT,
                    "Cache-Control": "no-cache",
                    "Accept": "*/*; q=0.5, application/xml",
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status, None
        except TimeoutError:
            return None, f"timed out after {self.timeout}s"
        except OSError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    # -- bookkeeping (called with emu.lock or self.cond held) --------------------------------------

    def _record(self, delivery, outcome, http_status, error, elapsed_ms) -> None:
        event = self.emu.store["event"].get(delivery.event_id)
        endpoint = self.emu.store["webhook_endpoint"].get(delivery.endpoint_id)
        self.log.append(
            {
                "id": f"whd_{next(self.log_counter)}",
                "event": delivery.event_id,
                "type": event["type"] if event else None,
                "endpoint": delivery.endpoint_id,
                "url": endpoint["url"] if endpoint else None,
                "attempt": delivery.attempt,
                "duplicate": delivery.duplicate,
                "resend": delivery.resend,
                "outcome": outcome,
                "http_status": http_status,
                "error": error,
                "duration_ms": elapsed_ms,
                "at": time.time(),
            }
        )

    def _finish(self, delivery: Delivery, succeeded: bool) -> None:
        private = self.emu.store.private.get(delivery.event_id)
        event = self.emu.store["event"].get(delivery.event_id)
        if private is None or event is None:
            return
        deliveries = private["deliveries"]
        if deliveries.get(delivery.endpoint_id) == "succeeded":
            return
        deliveries[delivery.endpoint_id] = "succeeded" if succeeded else "failed"
        event["pending_webhooks"] = sum(1 for s in deliveries.values() if s != "succeeded")
