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
        return self.launch().wait_until_serving()

    def launch(self):
        """Starts the server without waiting for it to answer (wait_until_serving does)."""
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--graceful-timeout", "2"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a crash takes the workers down too
        )
        return self

    def wait_until_serving(self):
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
        """After the test: nothing of the server's is looked at any more, so it goes as a crash would.
        A graceful stop waits out --graceful-timeout for the browser's idle keep-alive connections."""
        self.kill()

    def emails(self) -> list[str]:
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"))]


def server_environment(port: int, mail_dir: Path, api_base: str) -> dict:
    """The server's environment: this process's (with what the test set in it), pointed at the test
    database, the emulator, its own port and its own mail directory."""
    db = connection.settings_dict
    return {
        **{name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_API_BASE": api_base,
        "STRIPE_JS_URL": f"{api_base}/v3",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }


def _differ(server: AppServer, wanted: dict) -> bool:
    """Whether the server was launched with another environment than `wanted` (its own port and mail
    directory aside)."""
    own = ("SITE_URL", "EMAIL_FILE_PATH")
    return {k: v for k, v in server.env.items() if k not in own} != {k: v for k, v in wanted.items() if k not in own}


def _launched_server(tmp_path_factory, api_base: str) -> AppServer:
    port, mail_dir = free_port(), tmp_path_factory.mktemp("mail")
    return AppServer(server_environment(port, mail_dir, api_base), port, mail_dir).launch()


# Servers launched ahead of the tests that will use them: one boots in 2 to 4 s on the shared machine,
# longer than the browser test before it.
SERVERS_AHEAD = 2


@pytest.fixture(scope="session")
def _next_app_server(django_db_setup, stripe_emulator_process, tmp_path_factory):
    """The next tests' servers, launched while this test runs.

    Starting gunicorn and Django takes 2 to 4 s on the shared machine, about as long as a browser test
    itself; every test still gets a server of its own that nothing served before (no state carried
    from an earlier test), only started ahead. Stopped before the test database is dropped."""
    launched = []
    yield launched
    for server in launched:
        server.stop()


@pytest.fixture
def app_server(transactional_db, stripe_emulator, settings, _next_app_server, tmp_path_factory):
    api_base = stripe_emulator.api_base
    wanted = server_environment(0, Path(), api_base)
    server = _next_app_server.pop(0) if _next_app_server else None
    if server is None or _differ(server, wanted):
        # None launched yet, or launched before this test set its own environment (SITE_NAME, say).
        while _next_app_server:
            _next_app_server.pop().stop()
        if server is not None:
            server.stop()
        server = _launched_server(tmp_path_factory, api_base)
    try:
        server.wait_until_serving()
    except RuntimeError:  # the launched one died (its port taken meanwhile, say): one more try
        server = _launched_server(tmp_path_factory, api_base).wait_until_serving()
    # Rate limits count in the database cache, which no test transaction rolls back: start each
    # browser test (every one of them a checkout from 127.0.0.1) with no count from earlier ones.
    caches["default"].clear()
    # Stripe delivers this server's webhooks, as configured in a Stripe dashboard.
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
    endpoint = stripe.WebhookEndpoint.create(url=server.url + path, enabled_events=["*"])
    stripe_webhook_endpoint_ensure(secret=endpoint.secret, uuid=settings.STRIPE_WEBHOOK_UUID,
                                   url=server.url + path, livemode=False)
    while len(_next_app_server) < SERVERS_AHEAD:
        _next_app_server.append(_launched_server(tmp_path_factory, api_base))
    yield server
    server.stop()


@pytest.fixture
def page(chromium):
    with strict_page(chromium) as page:
        yield page
