"""`make demo` takes support mail: the README's curl command, run as written against gunicorn on the
demo's own settings (scripts/demo.py's environment and secrets) behind the demo's proxy, posts the
sample email, and it becomes a case with its attachment.

The database is the test database rather than the demo's SQLite (a second migration of its own would only cost time);
everything else is what `make demo` starts with. The README's `var/` and port 8000 are this test's.
"""

import importlib.util
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from scripts.demo_proxy import DemoProxy
from support.models import InboundMessage
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db(transaction=True)  # the web server is another process: commits


def readme_command() -> str:
    [command] = re.findall(r"^curl --netrc-file var/demo-inbound\.netrc .*$", (ROOT / "README.md").read_text(), re.M)
    return command


def load_demo(var: Path, monkeypatch):
    """scripts/demo.py as `make demo` runs it, with its var/ here (it reads BACKSTOP_VAR_DIR at import)."""
    monkeypatch.setenv("BACKSTOP_VAR_DIR", str(var))
    spec = importlib.util.spec_from_file_location("demo_for_inbound_test", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def wait_for(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def demo_web(tmp_path, monkeypatch):
    var = tmp_path / "var"
    var.mkdir()
    demo = load_demo(var, monkeypatch)
    values = demo.load_secrets()
    demo.write_inbound_netrc(values)
    env = demo.demo_environment(values)
    db = connection.settings_dict
    env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    app_port, proxy_port = free_port(), free_port()
    web = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind",
                            f"127.0.0.1:{app_port}", "--workers", "1", "--log-level", "warning"],
                           cwd=ROOT, env=env, start_new_session=True)
    proxy = DemoProxy(("127.0.0.1", proxy_port), ("127.0.0.1", app_port), b"down").start()
    try:
        wait_for(f"http://127.0.0.1:{proxy_port}/healthz")
        yield var, proxy_port
    finally:
        proxy.stop()
        web.terminate()
        web.wait(timeout=30)


def test_the_readmes_curl_command_posts_a_support_email_with_its_attachment_to_the_demo(demo_web):
    var, port = demo_web
    command = readme_command().replace("var/", f"{var}/").replace("127.0.0.1:8000", f"127.0.0.1:{port}")

    result = subprocess.run([*shlex.split(command), "--silent", "--write-out", "%{http_code}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)

    assert result.stdout.endswith("200"), (result.stdout, result.stderr)
    message = InboundMessage.objects.get()
    assert (message.from_email, message.subject) == ("ada@example.com", "Charged but I cannot get in")
    attachment = message.attachments.get()
    assert attachment.filename == "bank-statement.png"
    assert (var / "media" / attachment.file.name).read_bytes().startswith(b"\x89PNG")


def test_the_demo_refuses_the_sample_without_its_password(demo_web):
    var, port = demo_web
    command = readme_command().replace("var/", f"{var}/").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    command = command.replace(f"--netrc-file {var}/demo-inbound.netrc ", "")

    result = subprocess.run([*shlex.split(command), "--silent", "--output", "/dev/null", "--write-out",
                             "%{http_code}"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert result.stdout == "400"
    assert not InboundMessage.objects.exists()
