"""HTTP transport: a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive.

Why threads rather than asyncio: every request is a short, CPU-bound critical section behind one
lock, so an event loop would buy no concurrency, while blocking the thread is exactly what the
latency and timeout faults need (a held connection must not stall other clients). One thread per
connection, reused across keep-alive requests, is simple and fast enough (see docs/emulator.md).
"""

import hmac
import http
import ipaddress
import logging
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import api, control
from .app import Emulator

log = logging.getLogger("stripe_emulator")

# The Stripe side (the API, Stripe.js, the 3-D Secure page, receipts) answers any page, as Stripe
# does: a shop's page calls it with the publishable key. The control API does not (see _control_refusal).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Stripe-Version, Idempotency-Key",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Expose-Headers": "Request-Id, Stripe-Version, Idempotent-Replayed, "
    "Original-Request, Idempotency-Key",
}


# Pages under /_emulator/ that stand for Stripe's own, opened by a customer's browser.
BROWSER_PAGES = ("/_emulator/3ds/", "/_emulator/receipts/")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_control_path(path: str) -> bool:
    return path.startswith("/_emulator/") and not path.startswith(BROWSER_PAGES)


def _hostname(authority: str) -> str:
    """"127.0.0.1:12111" -> "127.0.0.1", "[::1]:12111" -> "::1", "localhost" -> "localhost"."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def _control_refusal(client_address: str, headers, secret_key: str) -> tuple[int, str] | None:
    """Why a control request (faults, clock, reset, snapshots) is refused, or None to serve it.

    The control API can reset the emulator, move its clock and write files, so only a program on
    this machine that knows the emulator's secret key may use it, never a web page: callers on
    loopback only; a loopback Host (a DNS-rebinding page arrives with its own name); no Origin but
    the emulator's own (browsers send one on cross-site requests); the secret key as a bearer
    token, which a cross-site form cannot send. Its answers carry no CORS headers.
    """
    try:
        loopback = ipaddress.ip_address(client_address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return 403, "The control API only answers callers on this machine."
    host = headers.get("Host", "")
    if _hostname(host.lower()) not in LOOPBACK_NAMES:
        return 403, "The control API only answers requests for a loopback host name."
    origin = headers.get("Origin")
    if origin is not None and origin.lower() != f"http://{host.lower()}":
        return 403, "The control API does not answer web pages of other origins."
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), secret_key.encode()):
        return 401, "The control API needs the emulator's secret key: Authorization: Bearer sk_test_..."
    return None


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, emu: Emulator):
        self.emu = emu
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StripeEmulator/1.0"
    server: EmulatorServer

    def setup(self):
        super().setup()
        # Replies are written in one piece; without this, Nagle plus delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the default logs to stderr for every request
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    def do_OPTIONS(self):
        self._serve()

    def _serve(self):
        started = time.perf_counter()
        emu = self.server.emu
        request_id = api.new_request_id()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"{emu.config.host}:{emu.config.port}"
        request = api.Request(
            method=self.command,
            path=parts.path,
            query=parts.query,
            body=body,
            headers={name.lower(): value for name, value in self.headers.items()},
            request_id=request_id,
            api_base=f"http://{host}",
        )
        control_path = is_control_path(parts.path)
        refusal = control_path and _control_refusal(self.client_address[0], self.headers, emu.config.secret_key)
        if refusal:
            status, message = refusal
            response = control.refused(status, message)
        elif self.command == "OPTIONS":
            response = api.Response(204, headers={"Request-Id": request_id})
        elif parts.path.startswith("/v1/"):
            response = api.handle(emu, request)
        elif parts.path.startswith(("/_emulator/", "/v3")):
            response = control.handle(emu, request)
            response.headers.setdefault("Request-Id", request_id)
        else:
            response = api.handle(emu, request)  # Stripe's "Unrecognized request URL"

        if response.hold_seconds is not None:
            time.sleep(response.hold_seconds)
            self._drop_connection(reset=False)
            outcome = f"held {response.hold_seconds}s then closed"
        elif response.reset:
            self._drop_connection(reset=True)
            outcome = "connection reset"
        else:
            self._write(response, cors=not control_path)
            outcome = str(response.status)
        log.info(
            "%s %s %s %.1fms %s",
            self.command,
            parts.path,
            outcome,
            (time.perf_counter() - started) * 1000,
            request_id,
        )

    def _write(self, response: api.Response, cors: bool = True) -> None:
        status = http.HTTPStatus(response.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        headers = {**(CORS_HEADERS if cors else {}), **response.headers}
        if status != http.HTTPStatus.NO_CONTENT:
            headers["Content-Length"] = str(len(response.body))
        headers["Connection"] = "close" if self.close_connection else "keep-alive"
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + response.body)
        except OSError:
            self.close_connection = True

    def _drop_connection(self, reset: bool) -> None:
        self.close_connection = True
        try:
            if reset:
                # SO_LINGER with a zero timeout turns close() into a TCP RST.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.connection.close()
        except OSError:
            pass


def make_server(emu: Emulator) -> EmulatorServer:
    return EmulatorServer((emu.config.host, emu.config.port), emu)
