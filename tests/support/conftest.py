import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import call_command


@pytest.fixture
def console(client):
    """A support person (the Support group, no refunds), signed in to the console."""
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")
    return client


@pytest.fixture
def chat_webhook():
    """A local stand-in for a Slack-compatible incoming webhook: records what it is sent."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/backstop", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def email_provider_down(settings):
    """A real SMTP client against a port where nothing listens: every email is refused."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    return settings
