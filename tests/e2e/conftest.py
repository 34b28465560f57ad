"""A real Backstop web server (gunicorn, subprocess) on the test database, a real Chromium.

The server is a separate process so a test can kill it with SIGKILL mid-payment and start it
again, as a crash in production would. It shares the test database, so tests here use
`transactional_db` (data must be committed for the server to see it).
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import stripe
from django.core.cache import caches
from django.db import connection
from django.urls import reverse

from billing.services import stripe_webhook_endpoint_ensure
from tests.browser import strict_page
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]



class AppServer:
    """gunicorn serving config.wsgi with the test settings, restartable on the same port."""

    def __init__(self, env: dict, port: int, mail_dir: Path):
        self.env, self.port, self.mail_dir = env, port, mail_dir
        self.url = f"http://127.0.0.1:{port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--graceful-timeout", "2"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a crash takes the workers down too
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.process.stderr.read().decode()[-3000:]) from None
                time.sleep(0.1)
        raise RuntimeError("the web server did not start")

    def kill(self):
        """SIGKILL to the master and its workers: no cleanup, no goodbye — a crash."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def emails(self) -> list[str]:
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"))]


@pytest.fixture
def app_server(transactional_db, stripe_emulator, tmp_path, settings):
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_API_BASE": stripe_emulator.api_base,
        "STRIPE_JS_URL": f"{stripe_emulator.api_base}/v3",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    server = AppServer(env, port, tmp_path / "mail")
    # Rate limits count in the database cache, which no test transaction rolls back: start each
    # browser test (every one of them a checkout from 127.0.0.1) with no count from earlier ones.
    caches["default"].clear()
    # Stripe delivers this server's webhooks, as configured in a Stripe dashboard.
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
    endpoint = stripe.WebhookEndpoint.create(url=server.url + path, enabled_events=["*"])
    stripe_webhook_endpoint_ensure(secret=endpoint.secret, uuid=settings.STRIPE_WEBHOOK_UUID,
                                   url=server.url + path, livemode=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page(chromium):
    with strict_page(chromium) as page:
        yield page
