"""A webhook endpoint for the emulator's tests: records every POST, can be told to fail."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Received:
    def __init__(self, headers: dict, body: bytes):
        self.headers = headers
        self.body = body
        self.payload = json.loads(body)
        self.at = time.monotonic()

    @property
    def event_id(self) -> str:
        return self.payload["id"]

    @property
    def type(self) -> str:
        return self.payload["type"]


class WebhookReceiver:
    def __init__(self):
        self.cond = threading.Condition()
        self.received: list[Received] = []
        self.fail_remaining = 0
        self.fail_status = 500
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._record(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, headers: dict, body: bytes) -> int:
        with self.cond:
            self.received.append(Received(headers, body))
            self.cond.notify_all()
            if self.fail_remaining > 0:
                self.fail_remaining -= 1
                return self.fail_status
            return 200

    def reset(self) -> None:
        with self.cond:
            self.received.clear()
            self.fail_remaining = 0

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.cond:
            self.fail_remaining, self.fail_status = count, status

    def for_event(self, event_id: str) -> list[Received]:
        with self.cond:
            return [r for r in self.received if r.event_id == event_id]

    def wait_for(self, predicate, timeout: float = 5.0) -> list[Received]:
        """Wait until ``predicate(received_list)`` is truthy; return the list."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(list(self.received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"webhooks received so far: {[(r.type, r.event_id) for r in self.received]}"
                    )
                self.cond.wait(remaining)
            return list(self.received)

    def wait_for_event(self, event_id: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        self.wait_for(lambda rs: sum(r.event_id == event_id for r in rs) >= count, timeout)
        return self.for_event(event_id)
