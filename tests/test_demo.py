"""`make demo` end to end: starts everything, serves the printed login, stops on SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture
def demo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"BACKSTOP_VAR_DIR": str(tmp_path / "var"), "DEMO_PORT": str(free_port()),
                "EMULATOR_PORT": str(free_port())})
    process = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    deadline = time.monotonic() + 240  # the first run migrates a fresh SQLite database
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    for _ in range(6):
        lines.append(process.stdout.readline())
    yield process, "".join(lines), env
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def children_of(pid):
    result = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split() if int(p) != pid]


def wait_until_gone(pid, timeout=10):
    """What is left of the demo's process group once it has had `timeout` seconds to go."""
    deadline = time.monotonic() + timeout
    while (left := children_of(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_the_demo_serves_the_admin_to_the_printed_support_login_and_stops_on_sigterm(demo):
    process, output, env = demo
    login = re.search(r"login (\S+) / (\S+)", output)
    assert login, output
    site = f"http://127.0.0.1:{env['DEMO_PORT']}"

    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{site}/admin/login/")
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    body = urlencode({"username": login[1], "password": login[2], "csrfmiddlewaretoken": csrf,
                      "next": "/admin/"}).encode()
    response = opener.open(urllib.request.Request(f"{site}/admin/login/?next=/admin/", data=body,
                                                  headers={"Referer": f"{site}/admin/login/"}))
    assert response.url.endswith("/admin/")
    assert "Support console" in response.read().decode()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert wait_until_gone(process.pid) == []
