"""Logs, errors (issue 22): JSON lines with a request id (and the order where there is one) from web,
worker and commands; unhandled errors to ADMINS and, when configured, to Sentry.

Observed: plain-text logs without a request id, and an unhandled 500 only on stderr.
"""

import gzip
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import stripe
from django.core import mail
from django.db import connection
from django.test import Client
from django_q.tasks import async_task

from billing import services
from config import logs
from config.log_redaction import RedactingFilter
from tests.config.test_settings_from_env import run_manage
from tests.factories import OrderFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """What LOG_FORMAT=json's console handler would write, captured from the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(logs.RequestContext())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def log_a_line():
    logging.getLogger("billing.tasks").warning("a task's line")


def test_every_response_carries_its_request_id(client):
    response = client.get("/healthz")

    assert REQUEST_ID.fullmatch(response["X-Request-ID"])


def test_a_request_id_from_the_proxy_is_kept(client):
    given = "6f1c2d8e9b1a4c3f8e7d6a5b4c3d2e1f"

    assert client.get("/healthz", headers={"X-Request-ID": given})["X-Request-ID"] == given


def test_a_requests_json_lines_carry_its_request_id(client, json_lines):
    response = client.get("/no-such-page/")

    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["level"] == "WARNING"
    assert line["request_id"] == response["X-Request-ID"]
    assert {"time", "level", "logger", "message", "request_id", "order"} <= set(line)


def test_a_tasks_json_lines_carry_its_task_id(json_lines):
    task_id = async_task("tests.config.test_logs.log_a_line", sync=True)

    line = next(line for line in json_lines() if line["message"] == "a task's line")
    assert line["request_id"] == task_id


def test_lines_logged_when_settling_an_order_fails_name_the_order(stripe_emulator, json_lines):
    order = OrderFactory(stripe_payment_intent_id="pi_NotInStripe0000000000")

    with pytest.raises(stripe.InvalidRequestError):  # Stripe does not know the payment
        services.order_settle(order_id=order.id, actor="sweep")
    logging.getLogger("billing.reconcile").exception("sweep: settling failed")

    line = next(line for line in json_lines() if line["message"] == "sweep: settling failed")
    assert line["order"] == order.reference


def test_an_order_is_named_only_on_lines_of_the_request_or_run_that_bound_it(json_lines):
    logs.bind_order("BK-AAAA-BBBB")
    logging.getLogger("billing").warning("same run")
    logs.unbind_order()
    logging.getLogger("billing").warning("after")

    orders = {line["message"]: line["order"] for line in json_lines()}
    assert orders == {"same run": "BK-AAAA-BBBB", "after": ""}


def test_a_commands_lines_are_json_objects_sharing_the_runs_id():
    result = run_manage("shell", "--no-imports", "-c",
                        "import logging; log = logging.getLogger('billing'); log.warning('one'); log.error('two')",
                        env_overrides={"LOG_FORMAT": "json"})

    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["one", "two"]
    assert lines[0]["request_id"] == lines[1]["request_id"]
    assert REQUEST_ID.fullmatch(lines[0]["request_id"])


def test_the_text_format_stays_one_readable_line():
    result = run_manage("shell", "--no-imports", "-c", "import logging; logging.getLogger('billing').warning('one')")

    assert result.stderr.strip().endswith("WARNING billing one")


def test_an_unknown_log_format_stops_start_up_naming_it():
    result = run_manage("check", env_overrides={"LOG_FORMAT": "xml"})

    assert result.returncode == 1
    assert "LOG_FORMAT" in result.stderr


def test_admins_are_read_from_the_environment():
    result = run_manage("shell", "--no-imports", "-c", "from django.conf import settings; print(settings.ADMINS)",
                        env_overrides={"ADMINS": "Ana Ops <ana@example.com>, oncall@example.com"})

    assert result.stdout.strip() == "[('Ana Ops', 'ana@example.com'), ('oncall@example.com', 'oncall@example.com')]"


def test_an_unhandled_error_is_emailed_to_admins(settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.ROOT_URLCONF = "tests.config.raising_urls"

    Client(raise_request_exception=False).get("/orders/status/broken/")

    [email] = mail.outbox
    assert email.to == ["ops@example.com"]
    assert "Internal Server Error: /orders/[token]/broken/" in email.subject  # redacted as the logs are
    assert "RuntimeError at " in email.body
    assert "a bug" in email.body
    assert "/orders/status/" not in email.body  # the status token, redacted all through the report


def test_without_admins_an_unhandled_error_emails_nobody(settings):
    settings.ADMINS = []
    settings.ROOT_URLCONF = "tests.config.raising_urls"

    Client(raise_request_exception=False).get("/orders/status/broken/")

    assert mail.outbox == []


class _SentryStandIn(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":
            import brotli  # the SDK only uses brotli when it is installed, so only then is it needed

            body = brotli.decompress(body)
        _SentryStandIn.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry():
    server = HTTPServer(("127.0.0.1", 0), _SentryStandIn)
    _SentryStandIn.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_port}/1", _SentryStandIn.received
    server.shutdown()


def test_with_sentry_dsn_an_error_from_a_command_reaches_sentry(sentry):
    dsn, received = sentry

    run_manage("shell", "--no-imports", "-c", "import logging; logging.getLogger('billing').error('the sweep broke')",
               env_overrides={"SENTRY_DSN": dsn})

    assert any(b"the sweep broke" in envelope for envelope in received)


def test_what_sentry_is_sent_has_status_tokens_redacted(sentry):
    dsn, received = sentry

    run_manage("shell", "--no-imports", "-c",
               "import logging; logging.getLogger('billing').error('GET /orders/a-secret-status-token/ broke')",
               env_overrides={"SENTRY_DSN": dsn})

    assert any(b"/orders/[token]/ broke" in envelope for envelope in received)
    assert not any(b"a-secret-status-token" in envelope for envelope in received)


def test_without_sentry_dsn_nothing_is_sent(sentry):
    _dsn, received = sentry

    run_manage("shell", "--no-imports", "-c", "import logging; logging.getLogger('billing').error('the sweep broke')")

    assert received == []


@pytest.fixture
def gunicorn_json(transactional_db, tmp_path):
    """gunicorn serving config.wsgi as the deploy guide runs it, with LOG_FORMAT=json; its log file."""
    db = connection.settings_dict
    port = free_port()
    log = tmp_path / "web.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LOG_FORMAT": "json",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT']}/{db['NAME']}"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--access-logfile", "-", "--logger-class", "config.log_redaction.GunicornLogger"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def get(url):
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response
        except urllib.error.HTTPError as error:
            return error
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the server is still starting: ask again


def test_the_web_servers_lines_are_json_with_the_request_id_its_answer_carried(gunicorn_json):
    site, log = gunicorn_json

    answer = get(f"{site}/orders/a-secret-status-token/")
    request_id = answer.headers["X-Request-ID"]
    deadline = time.monotonic() + 10
    while request_id not in log.read_text() or log.read_text().count(request_id) < 2:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)  # the access line is written after the answer: read again

    lines = [json.loads(line) for line in log.read_text().splitlines() if request_id in line]
    assert {line["logger"] for line in lines} == {"django.request", "gunicorn.access"}
    assert all(line["request_id"] == request_id for line in lines)
    assert all("a-secret-status-token" not in json.dumps(line) for line in lines)


@pytest.fixture
def task_worker_json(transactional_db, tmp_path, monkeypatch):
    """`manage.py qcluster` on the test database with LOG_FORMAT=json; tasks go to it, not inline."""
    from django_q.conf import Conf  # the test settings' switch, read by async_task

    monkeypatch.setattr(Conf, "SYNC", False)
    db = connection.settings_dict
    log = tmp_path / "worker.log"
    # config.settings on the test environment (tests.settings put it in os.environ): tests.settings runs
    # tasks inline, and a cluster started with that shares its database connection with its children.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "json", "Q_WORKERS": "1",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT']}/{db['NAME']}"}
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # nothing left to finish: the line is read
        process.wait(timeout=10)


def test_a_running_workers_task_lines_are_json_with_the_task_id(task_worker_json):
    task_id = async_task("tests.config.test_logs.log_a_line")

    deadline = time.monotonic() + 60
    while "a task's line" not in task_worker_json.read_text():
        assert time.monotonic() < deadline, task_worker_json.read_text()[-2000:]
        time.sleep(0.2)  # the worker polls the queue every second: read again

    line = next(json.loads(line) for line in task_worker_json.read_text().splitlines() if "a task's line" in line)
    assert line["request_id"] == task_id
    assert line["logger"] == "billing.tasks"
