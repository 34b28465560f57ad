"""A product's webhook endpoint for tests: a real HTTP server on a free port that verifies every
delivery with the `standardwebhooks` library, as a product would, and answers as told."""

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from tests.ports import free_port

SECRET = "whsec_" + base64.b64encode(b"a product's own webhook secret, 32b").decode()


class Receiver:
    """`answers`: statuses for the next verified deliveries (then 200); `down`: answer 503 to all."""

    def __init__(self, secret: str = SECRET):
        self.verified, self.refused, self.answers, self.down = [], [], [], False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = Webhook(secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    receiver.refused.append(str(exc))
                    status = 400
                else:
                    if receiver.down:
                        status = 503
                    else:
                        receiver.verified.append((self.headers["webhook-id"], event))
                        status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try later")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/backstop/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self):
        return [(event["type"], event["data"]["email"], event["data"]["access_until"]) for _id, event in self.verified]

    def first_seen(self) -> list[str]:
        """The webhook-ids taken, in the order each was first taken (repeats are the product's to skip)."""
        return list(dict.fromkeys(event_id for event_id, _event in self.verified))
