"""HTTP transport: a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive.

Why threads rather than asyncio: every request is a short, CPU-bound critical section behind one
lock, so an event loop would buy no concurrency, while blocking the thread is exactly what the
latency and timeout faults need (a held connection must not stall other clients). One thread per
connection, reused across keep-alive requests, is simple and fast enough (see docs/emulator.md).
"""

import http
import logging
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import api, control
from .app import Emulator

log = logging.getLogger("stripe_emulator")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Stripe-Version, Idempotency-Key",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Expose-Headers": "Request-Id, Stripe-Version, Idempotent-Replayed, "
    "Original-Request, Idempotency-Key",
}


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
        if self.command == "OPTIONS":
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
            self._write(response)
            outcome = str(response.status)
        log.info(
            "%s %s %s %.1fms %s",
            self.command,
            parts.path,
            outcome,
            (time.perf_counter() - started) * 1000,
            request_id,
        )

    def _write(self, response: api.Response) -> None:
        status = http.HTTPStatus(response.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        headers = {**CORS_HEADERS, **response.headers}
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
