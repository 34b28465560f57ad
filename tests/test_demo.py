"""`make demo` end to end: starts everything, serves the printed login, shows the customer the
"briefly unavailable" page while its web server is down, stops on SIGTERM.

One demo stack for the module (starting one migrates a fresh SQLite database): the tests run in order,
and the last one stops it."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


LAST_PRINTED_LINE = "  Web server:"
# Until it is up, the demo runs niced: its start (migrating a fresh SQLite database, about 10 s of CPU)
# then takes only what the other pytest workers leave, rather than slowing the migrations every
# other test database waits for (scripts/test.sh). Once it is up, its processes get their priority
# back, which only root may give: elsewhere it starts at normal priority.
PREPARING_NICELY = ["nice", "-n", "10"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"BACKSTOP_VAR_DIR": str(tmp_path_factory.mktemp("demo") / "var"), "DEMO_PORT": str(free_port()),
                "EMULATOR_PORT": str(free_port())})
    if os.environ.get("PYTEST_XDIST_WORKER") and (ROOT / "staticfiles" / "staticfiles.json").exists():
        # Another worker's servers read the collected files: collecting them again would delete and
        # rewrite them under it (a vanished file stops WhiteNoise's start). `make test` collected them.
        env["BACKSTOP_STATIC_COLLECTED"] = "1"
    process = subprocess.Popen([*PREPARING_NICELY, sys.executable, "scripts/demo.py"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []

    def read_everything():  # also keeps the pipe from filling up while the tests run
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read_everything, daemon=True).start()
    # The first run migrates a fresh SQLite database: about 10 s alone (decision 0035), longer when
    # `make test` shares the two cores with the other workers and the crash matrix. It ends at the line.
    deadline = time.monotonic() + 600
    while LAST_PRINTED_LINE not in "".join(lines) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in [process.pid, *descendants(process.pid)]:  # up: the tests below time its answers
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, pid, 0)
    yield process, "".join(lines), env
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def children_of(pid):
    result = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split() if int(p) != pid]


def descendants(pid):
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    children = [int(p) for p in result.stdout.split()]
    return children + [grandchild for child in children for grandchild in descendants(child)]


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"  # a zombie is gone too
    except FileNotFoundError:
        return False


def still_running(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:  # no answer at all: what the proxy is there to prevent
        return None, str(error)


def get_until(url, status, timeout):
    deadline = time.monotonic() + timeout
    while (answer := get(url))[0] != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def test_while_its_web_server_is_down_the_demo_shows_the_briefly_unavailable_page_then_restarts_it(demo):
    process, output, env = demo
    site = f"http://127.0.0.1:{env['DEMO_PORT']}"
    gunicorn = int(re.search(r"gunicorn pid (\d+)", output)[1])

    os.killpg(gunicorn, signal.SIGKILL)  # a crash: the master and its workers at once

    status, page = get_until(f"{site}/", 502, timeout=5)
    assert status == 502
    assert "briefly unavailable" in page
    assert "may or may not have been charged" in page
    assert get_until(f"{site}/healthz", 200, timeout=60)[0] == 200
    assert process.poll() is None


def wait_until_gone(pid, timeout=10):
    """What is left of the demo's process group once it has had `timeout` seconds to go."""
    deadline = time.monotonic() + timeout
    while (left := children_of(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_the_demo_says_its_console_login_skips_the_authenticator_code_production_asks_for(demo):
    _process, output, _env = demo

    assert "two-factor is off in the demo; production asks for an authenticator code (support_staff --totp)" in output


def test_the_demo_prints_the_product_page_which_asks_a_visitor_to_sign_in_first(demo):
    _process, output, _env = demo
    product = re.search(r"The product: +(http://\S+/app/)", output)
    assert product, output

    with urllib.request.urlopen(product[1], timeout=5) as response:
        assert response.url.endswith("/account/login/?next=/app/")


def test_the_printed_support_login_opens_the_console_in_a_browser(demo, chromium):
    from playwright.sync_api import expect

    from tests.browser import strict_page

    _process, output, _env = demo
    login = re.search(r"login (\S+) / (\S+)", output)
    console = re.search(r"(http://\S+/admin/)", output)
    assert login, output
    assert console, output

    with strict_page(chromium, width=1100, height=900) as page:
        page.goto(console[1])
        page.get_by_label("Email").fill(login[1])
        page.get_by_label("Password").fill(login[2])
        page.get_by_role("button", name="Log in").click()

        expect(page).to_have_url(console[1])
        expect(page.locator("input[name=q]")).to_be_visible()


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

    started = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert wait_until_gone(process.pid) == []
    assert still_running(started) == []  # the web server restarted earlier and its workers too
