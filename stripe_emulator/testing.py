"""Run the emulator for tests: as a subprocess on a free port, with a client for /_emulator/.

    from stripe_emulator.testing import EmulatorProcess

    with EmulatorProcess(webhooks=[("http://127.0.0.1:8000/stripe/webhook/<uuid>/", "whsec_x")],
                         retry_schedule=[0.2, 0.5]) as emulator:
        with emulator.stripe_configured():        # stripe.api_base / stripe.api_key
            stripe.PaymentIntent.create(...)
        emulator.control.lose_response_next(method="POST", path="/v1/payment_intents")
        emulator.control.wait_for_webhooks()

Nothing here imports Django, so it serves plain pytest and pytest-django suites alike.
"""

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY

READY_PREFIX = "Stripe emulator listening on "
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ControlError(RuntimeError):
    pass


class ControlClient:
    """A small client for the fault-injection control API (see docs/emulator.md), which asks for
    the emulator's secret key (`token`)."""

    def __init__(self, api_base: str, timeout: float = 30.0, token: str = DEFAULT_SECRET_KEY):
        parts = urlsplit(api_base)
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None,
                query: dict | None = None, timeout: float | None = None) -> Any:
        connection = http.client.HTTPConnection(self.host, self.port,
                                                timeout=timeout or self.timeout)
        try:
            if query:
                path = f"{path}?{urlencode(query)}"
            payload = json.dumps(body or {}).encode() if method != "GET" else None
            headers = {"Authorization": f"Bearer {self.token}"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        result = json.loads(data) if data else None
        if response.status >= 400:
            raise ControlError(f"{method} {path} -> {response.status}: {result}")
        return result

    # -- state and clock ---------------------------------------------------------------------------

    def state(self) -> dict:
        return self.request("GET", "/_emulator/state")

    def reset(self) -> dict:
        return self.request("POST", "/_emulator/reset")

    def now(self) -> int:
        return self.request("GET", "/_emulator/clock")["now"]

    def add_restricted_key(self, key: str, permissions: dict[str, str]) -> dict:
        """A restricted key with these permissions ({"charge": "read", "refund": "write"})."""
        return self.request("POST", "/_emulator/restricted_keys", {"key": key, "permissions": permissions})

    def set_statement_prefix(self, prefix: str) -> dict:
        """Change the account's statement prefix, as one would in Stripe's Dashboard."""
        return self.request("POST", "/_emulator/account", {"statement_prefix": prefix})

    def advance_clock(self, seconds: int) -> int:
        return self.request("POST", "/_emulator/clock/advance", {"seconds": seconds})["now"]

    def snapshot(self, name: str | None = None) -> dict:
        """Write the state now: to `name` in the snapshot directory, or to the --snapshot file."""
        return self.request("POST", "/_emulator/snapshot", {"name": name} if name else {})

    def seed(self, charges: int, customers: int = 1, **options) -> dict:
        # Seeding 100,000 payments takes tens of seconds.
        return self.request("POST", "/_emulator/seed",
                            {"charges": charges, "customers": customers, **options}, timeout=600)

    # -- request faults --------------------------------------------------------------------------

    def add_fault(self, kind: str, *, method: str = "*", path: str = "/v1/", count: int = 1,
                  **options) -> dict:
        spec = {"kind": kind, "method": method, "path": path, "count": count, **options}
        return self.request("POST", "/_emulator/faults", spec)["fault"]

    def fail_next(self, *, method: str = "*", path: str = "/v1/", count: int = 1,
                  status: int | str = 500, seconds: float = 0) -> dict:
        """Fail before processing: ``status`` 500, 429, or "timeout" (hold ``seconds``, close)."""
        return self.add_fault("fail", method=method, path=path, count=count,
                              status=str(status), seconds=seconds)

    def lose_response_next(self, *, method: str = "*", path: str = "/v1/", count: int = 1,
                           mode: str = "reset") -> dict:
        """Process the request, then lose the reply (``mode`` "reset" or "500")."""
        return self.add_fault("lose_response", method=method, path=path, count=count, mode=mode)

    def add_latency(self, seconds: float, *, method: str = "*", path: str = "/v1/",
                    count: int = 1) -> dict:
        return self.add_fault("latency", method=method, path=path, count=count, seconds=seconds)

    def faults(self) -> list[dict]:
        return self.request("GET", "/_emulator/faults")["faults"]

    def clear_faults(self) -> None:
        self.request("DELETE", "/_emulator/faults")

    # -- rate limits (stripe_emulator/ratelimit.py) --------------------------------------------------

    def limit_rates(self, *, mode: str | None = None, overall: int | None = None,
                    per_endpoint: int | None = None) -> dict:
        """Stripe's limits of a mode ("test", "live", "off"), or a budget of one's own."""
        body = {k: v for k, v in (("mode", mode), ("overall", overall), ("per_endpoint", per_endpoint))
                if v is not None}
        return self.request("POST", "/_emulator/rate_limits", body)

    def rate_limits(self) -> dict:
        """The limits in force and the 429s answered since they were set, by endpoint."""
        return self.request("GET", "/_emulator/rate_limits")

    # -- webhooks ----------------------------------------------------------------------------------

    def pause_webhooks(self) -> dict:
        return self.request("POST", "/_emulator/webhooks/pause")

    def resume_webhooks(self) -> dict:
        return self.request("POST", "/_emulator/webhooks/resume")

    def drop_webhooks(self, count: int = 1) -> dict:
        return self.request("POST", "/_emulator/webhooks/drop", {"count": count})

    def duplicate_webhooks(self, count: int = 1) -> dict:
        return self.request("POST", "/_emulator/webhooks/duplicate", {"count": count})

    def delay_webhooks(self, seconds: float, count: int = 1) -> dict:
        return self.request("POST", "/_emulator/webhooks/delay",
                            {"seconds": seconds, "count": count})

    def reorder_webhooks(self, count: int, mode: str = "reverse") -> dict:
        return self.request("POST", "/_emulator/webhooks/reorder", {"count": count, "mode": mode})

    def flush_webhooks(self) -> dict:
        return self.request("POST", "/_emulator/webhooks/flush")

    def resend_event(self, event_id: str, endpoint: str | None = None) -> dict:
        return self.request("POST", f"/_emulator/events/{event_id}/resend",
                            {"endpoint": endpoint} if endpoint else {})

    def webhook_deliveries(self, **filters: str) -> list[dict]:
        return self.request("GET", "/_emulator/webhook_deliveries", query=filters)["deliveries"]

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is queued, held or being sent (retries included)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.request("GET", "/_emulator/webhooks")
            if status["queued"] == 0 and status["in_flight"] == 0 and status["held"] == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhooks still pending: {status}")
            time.sleep(0.02)

    # -- 3-D Secure --------------------------------------------------------------------------------

    def complete_3ds(self, payment_intent: str, client_secret: str) -> str:
        return self.request("POST", f"/_emulator/3ds/{payment_intent}/complete",
                            {"client_secret": client_secret})["status"]

    def fail_3ds(self, payment_intent: str, client_secret: str) -> str:
        return self.request("POST", f"/_emulator/3ds/{payment_intent}/fail",
                            {"client_secret": client_secret})["status"]


    # -- refunds -----------------------------------------------------------------------------------

    def fail_refund(self, refund: str, failure_reason: str = "expired_or_canceled_card") -> dict:
        """The card's bank sends the refund back (Stripe's test card 4000000000005126, later)."""
        return self.request("POST", f"/_emulator/refunds/{refund}/fail", {"failure_reason": failure_reason})


class EmulatorProcess:
    """The emulator as a subprocess on a free port; a context manager that stops it on exit."""

    def __init__(
        self,
        *,
        webhooks: Sequence[tuple[str, str]] = (),
        retry_schedule: Sequence[float] = (0.2, 0.4, 0.8),
        webhook_timeout: float = 2.0,
        secret_key: str = DEFAULT_SECRET_KEY,
        publishable_key: str = DEFAULT_PUBLISHABLE_KEY,
        snapshot: str | None = None,
        snapshot_dir: str | None = None,
        log_level: str = "WARNING",
        host: str = "127.0.0.1",
        startup_timeout: float = 20.0,
        extra_args: Sequence[str] = (),
        rate_limits: str | None = None,
    ):
        self.webhooks = list(webhooks)
        self.retry_schedule = list(retry_schedule)
        self.webhook_timeout = webhook_timeout
        self.secret_key = secret_key
        self.publishable_key = publishable_key
        self.snapshot = snapshot
        self.snapshot_dir = snapshot_dir
        self.log_level = log_level
        self.host = host
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.rate_limits = rate_limits
        self.process: subprocess.Popen | None = None
        self.api_base = ""
        self.port = 0
        self.control: ControlClient | None = None
        self._log = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "stripe_emulator",
            "--host", self.host,
            "--port", "0",
            "--secret-key", self.secret_key,
            "--publishable-key", self.publishable_key,
            "--webhook-retry-schedule", ",".join(str(s) for s in self.retry_schedule),
            "--webhook-timeout", str(self.webhook_timeout),
            "--log-level", self.log_level,
        ]
        for url, secret in self.webhooks:
            cmd += ["--webhook", f"{url}={secret}"]
        if self.snapshot:
            cmd += ["--snapshot", self.snapshot]
        if self.snapshot_dir:
            cmd += ["--snapshot-dir", self.snapshot_dir]
        if self.rate_limits:
            cmd += ["--rate-limits", self.rate_limits]
        return cmd + self.extra_args

    def start(self) -> "EmulatorProcess":
        self._log = tempfile.NamedTemporaryFile(prefix="stripe-emulator-", suffix=".log",  # noqa: SIM115
                                                delete=False)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command(), stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
            cwd=REPO_ROOT,
        )
        deadline = time.monotonic() + self.startup_timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(READY_PREFIX):
                break
            if not line and self.process.poll() is not None:
                break
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"the emulator did not start; see {self._log.name}:\n{self.logs()}")
        self.api_base = line[len(READY_PREFIX):].strip()
        self.port = urlsplit(self.api_base).port
        self.control = ControlClient(self.api_base, token=self.secret_key)
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        code = self.process.returncode
        self.process = None
        return code

    def logs(self) -> str:
        if self._log is None:
            return ""
        with open(self._log.name) as fh:
            return fh.read()

    @contextlib.contextmanager
    def stripe_configured(self, max_network_retries: int | None = None) -> Iterator[None]:
        """Point the module-level ``stripe`` SDK at this emulator, restoring it afterwards."""
        import stripe

        saved = (stripe.api_base, stripe.api_key, stripe.max_network_retries)
        stripe.api_base = self.api_base
        stripe.api_key = self.secret_key
        if max_network_retries is not None:
            stripe.max_network_retries = max_network_retries
        try:
            yield
        finally:
            stripe.api_base, stripe.api_key, stripe.max_network_retries = saved

    def client(self, **options):
        """A ``stripe.StripeClient`` bound to this emulator."""
        import stripe

        return stripe.StripeClient(self.secret_key, base_addresses={"api": self.api_base},
                                   **options)

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
