"""The emulator's state and the request context handlers receive."""

import collections
import json
import logging
import os
import threading
from dataclasses import dataclass, field

from . import API_VERSION, DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY
from .clock import Clock
from .faults import FaultInjector
from .idempotency import IdempotencyCache
from .ratelimit import RateLimiter
from .store import Store
from .webhooks import WebhookDispatcher

log = logging.getLogger("stripe_emulator")

ACCOUNT_ID = "acct_1BackstopEmulatr"


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 12111
    secret_key: str = DEFAULT_SECRET_KEY
    publishable_key: str = DEFAULT_PUBLISHABLE_KEY
    webhooks: list[tuple[str, str]] = field(default_factory=list)  # (url, signing secret)
    retry_schedule: list[float] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    webhook_timeout: float = 10.0
    webhook_workers: int = 4
    # What the --webhook endpoints are subscribed to; ["*"] is every event.
    webhook_events: list[str] = field(default_factory=lambda: ["*"])
    snapshot: str | None = None
    # Where snapshots named through the control API are written; default: the --snapshot file's directory.
    snapshot_dir: str | None = None
    api_version: str = API_VERSION
    # The account's statement prefix (Dashboard > Settings > Public details); charges print it.
    statement_prefix: str = "BACKSTOP"
    # Restricted keys and their permissions ({"rk_test_...": {"charge": "read"}}): stripe_emulator/restricted.py.
    restricted_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    # Stripe's documented rate limits, "test" or "live" (stripe_emulator/ratelimit.py); None: off.
    rate_limits: str | None = None

    def snapshot_directory(self) -> str | None:
        if self.snapshot_dir:
            return self.snapshot_dir
        return os.path.dirname(os.path.abspath(self.snapshot)) if self.snapshot else None


@dataclass
class Context:
    emu: "Emulator"
    request_id: str | None = None
    idempotency_key: str | None = None
    publishable: bool = False
    api_base: str = ""
    emit_events: bool = True
    expand: list[str] = field(default_factory=list)
    # Seeding back-dates objects; everything else lives at the emulator clock's "now".
    fixed_now: int | None = None

    def now(self) -> int:
        return self.fixed_now if self.fixed_now is not None else self.emu.clock.now()


class Emulator:
    def __init__(self, config: Config):
        self.config = config
        # One lock for all object state: handlers are short, and it makes every request atomic.
        self.lock = threading.RLock()
        self.clock = Clock()
        self.store = Store()
        # Those given on the command line, and any added through the control API until a reset.
        self.restricted_keys = dict(config.restricted_keys)
        self.idempotency = IdempotencyCache(self.clock)
        self.faults = FaultInjector()
        self.rate_limits = RateLimiter(config.rate_limits)
        self.webhooks = WebhookDispatcher(
            self, config.retry_schedule, config.webhook_timeout, config.webhook_workers
        )
        self.cli_endpoint_ids: set[str] = set()
        # API requests answered, by key kind and endpoint ("secret", "POST /v1/payment_intents/{}"):
        # what a load run counts as Stripe calls per purchase (GET /_emulator/state).
        self.request_counts: collections.Counter = collections.Counter()
        with self.lock:
            self._bootstrap()
            if config.snapshot and os.path.exists(config.snapshot):
                self.load_snapshot(config.snapshot)

    def _bootstrap(self) -> None:
        from .resources.account import build_account
        from .resources.webhook_endpoints import build_endpoint

        self.store.insert("account", build_account(self))
        for url, secret in self.config.webhooks:
            endpoint = build_endpoint(self, url, list(self.config.webhook_events), secret=secret,
                                      description="--webhook")
            self.cli_endpoint_ids.add(endpoint["id"])

    def context(self, **kwargs) -> Context:
        return Context(emu=self, **kwargs)

    def present(self, obj: dict) -> dict:
        """The object as the API shows it now (a few fields depend on the emulator clock)."""
        if (
            obj.get("object") == "balance_transaction"
            and obj["status"] == "pending"
            and self.clock.now() >= obj["available_on"]
        ):
            return {**obj, "status": "available"}
        return obj

    def reset(self) -> None:
        """Forget everything except the account and the endpoints given on the command line."""
        with self.lock:
            self.webhooks.reset()
            self.faults.clear()
            self.rate_limits.configure(mode=self.config.rate_limits)
            self.idempotency.clear()
            self.clock.reset()
            self.store.clear(
                keep=lambda kind, obj: kind == "account"
                or (kind == "webhook_endpoint" and obj["id"] in self.cli_endpoint_ids)
            )
            from .resources.account import set_statement_prefix

            set_statement_prefix(self, self.config.statement_prefix)  # as given on the command line
            self.restricted_keys = dict(self.config.restricted_keys)

    # -- snapshot --------------------------------------------------------------------------------

    def save_snapshot(self, path: str) -> int:
        with self.lock:
            data = {"clock_offset": self.clock.offset, "store": self.store.dump()}
            text = json.dumps(data)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return len(text)

    def load_snapshot(self, path: str) -> None:
        with open(path) as fh:
            data = json.load(fh)
        with self.lock:
            self.store.load(data["store"])
            self.clock.reset(data.get("clock_offset", 0))
            # Endpoints given on the command line win over the snapshot's copy of them.
            self.cli_endpoint_ids = set()
            endpoints = self.store["webhook_endpoint"]
            for url, secret in self.config.webhooks:
                existing = next(
                    (e for e in endpoints.rows.values() if e["url"] == url), None
                )
                if existing is not None:
                    self.store.private[existing["id"]]["secret"] = secret
                    self.cli_endpoint_ids.add(existing["id"])
                else:
                    from .resources.webhook_endpoints import build_endpoint

                    endpoint = build_endpoint(self, url, list(self.config.webhook_events), secret=secret)
                    self.cli_endpoint_ids.add(endpoint["id"])
        log.info("loaded snapshot %s (%s)", path, self.store.counts())
