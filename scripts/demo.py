"""`make demo`: the whole of Backstop on one machine, on its embedded defaults.

SQLite, the local Stripe emulator, email written to files, the django-q2 worker and the web
server, all started and stopped together. Ctrl-C, SIGTERM or SIGHUP (or the death of whatever
started us) stops everything this script started. Safe to re-run: setup steps are idempotent and
secrets are generated once into var/.

The shop's port (DEMO_PORT) is a small reverse proxy (scripts/demo_proxy.py) in front of gunicorn,
as nginx is in production: while the web server is down, customers get the "briefly unavailable"
page (templates/50x.html, rendered into var/) and the web server is restarted, so a crash is seen
as a customer would see it.
"""

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from billing.stripe_events import STRIPE_EVENTS_USED  # noqa: E402  (plain data, no Django)

VAR = Path(os.environ.get("BACKSTOP_VAR_DIR", ROOT / "var")).resolve()
PYTHON = sys.executable
WEB_PORT = int(os.environ.get("DEMO_PORT", "8000"))
APP_PORT = int(os.environ.get("DEMO_APP_PORT") or 0)  # gunicorn, behind the proxy; 0: a free port
WEB_RESTART_DELAY = 5  # seconds the shop shows the 50x page after the web server dies
EMULATOR_PORT = int(os.environ.get("EMULATOR_PORT", "12111"))
SUPPORT_EMAIL = "support@backstop.localhost"
EMULATOR_SECRET_KEY = "sk_test_51BackstopEmulatorLocalKey0000000000"
EMULATOR_PUBLISHABLE_KEY = "pk_test_51BackstopEmulatorLocalKey0000000000"
INBOUND_USER = "postmark"


def say(message):
    print(f"[demo] {message}", flush=True)


def load_secrets():
    """Generated on the first run, kept so sessions and the printed login survive restarts."""
    path = VAR / "demo-secrets.json"
    if path.exists():
        values = json.loads(path.read_text())
        if "webhook_uuid" in values and "inbound_secret" in values:
            return values
    else:
        values = {
            "secret_key": secrets.token_urlsafe(50),
            "support_password": secrets.token_urlsafe(9),
            "webhook_secret": "whsec_" + secrets.token_hex(24),
        }
    # Each added to a var/ from before it was: the webhook path is this installation's own, and so
    # is the password the email provider's inbound webhook presents.
    values.setdefault("webhook_uuid", str(uuid.uuid4()))
    values.setdefault("inbound_secret", secrets.token_urlsafe(18))
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def write_inbound_netrc(values):
    """The inbound webhook's user and password for curl (`--netrc-file var/demo-inbound.netrc`, the
    README's sample email), so no secret is typed or shown on a command line."""
    path = VAR / "demo-inbound.netrc"
    path.write_text(f"machine 127.0.0.1 login {INBOUND_USER} password {values['inbound_secret']}\n")
    path.chmod(0o600)
    return path


def demo_environment(values):
    site = f"http://127.0.0.1:{WEB_PORT}"
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)  # the embedded default: SQLite in var/
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "false",  # show the real customer-facing error pages
            # Unlike production, no authenticator code at the console's door: a newcomer has no app set up
            # for the demo's support person. Said where the login is printed.
            "STAFF_TWO_FACTOR": "false",
            "SECRET_KEY": values["secret_key"],
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "HTTPS": "false",
            "TRUSTED_PROXY_COUNT": "1",  # the demo's proxy appends the client to X-Forwarded-For, as nginx does
            "SITE_URL": site,
            "STRIPE_SECRET_KEY": EMULATOR_SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": EMULATOR_PUBLISHABLE_KEY,
            "STRIPE_API_BASE": f"http://127.0.0.1:{EMULATOR_PORT}",
            "STRIPE_JS_URL": f"http://127.0.0.1:{EMULATOR_PORT}/v3",
            "STRIPE_WEBHOOK_SECRET": values["webhook_secret"],
            "STRIPE_WEBHOOK_UUID": values["webhook_uuid"],
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(VAR / "mail"),
            # Support mail comes in as Postmark posts it (its inbound JSON, basic auth), though the
            # demo's own emails go to files: the README's curl posts a sample email this way.
            "ANYMAIL_ESP": "postmark",
            "ANYMAIL_WEBHOOK_SECRET": f"{INBOUND_USER}:{values['inbound_secret']}",
            "BACKSTOP_VAR_DIR": str(VAR),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def die_with_parent():
    # Linux: if this supervisor is killed outright, the kernel still stops its children.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_processes(children, say, timeout=10):
    """Stop (name, Popen) children, newest first, each the leader of its own process group.

    Only the leaders are asked first: gunicorn and qcluster stop their own workers in order;
    signalling the whole group at once makes qcluster's guard restart workers while it shuts down.
    Whatever a leader leaves behind is killed with its group afterwards.
    """
    for _name, process in reversed(children):
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for name, process in reversed(children):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in time; killing it")
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class Supervisor:
    def __init__(self, env):
        self.env = env
        self.children = []  # (name, Popen)
        self.proxy = None  # the DemoProxy on DEMO_PORT, a thread of this process
        self.stopping = False

    def run_step(self, *args):
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def start(self, name, argv):
        say(f"starting {name}")
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, start_new_session=True, preexec_fn=die_with_parent
        )
        self.children.append((name, process))
        return process

    def restart(self, name, argv):
        old = next(process for child, process in self.children if child == name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)  # workers the dead leader left holding the port
        self.children = [(child, process) for child, process in self.children if child != name]
        return self.start(name, argv)

    def stop_all(self, reason):
        if self.stopping:
            return
        self.stopping = True
        say(f"stopping everything ({reason})")
        stop_processes(self.children, say)
        if self.proxy is not None:
            self.proxy.stop()
        say("stopped")


def wait_for_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def main():
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / "mail").mkdir(exist_ok=True)
    ports = [(WEB_PORT, "shop (DEMO_PORT)"), (EMULATOR_PORT, "Stripe emulator (EMULATOR_PORT)")]
    if APP_PORT:
        ports.append((APP_PORT, "web server (DEMO_APP_PORT)"))
    for port, what in ports:
        if not port_is_free(port):
            say(f"port {port} for the {what} is already in use: stop what holds it or pick another port")
            return 2
    values = load_secrets()
    inbound_netrc = write_inbound_netrc(values)
    supervisor = Supervisor(demo_environment(values))

    def on_signal(signum, _frame):
        supervisor.stop_all(signal.Signals(signum).name)
        sys.exit(0)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    say(f"preparing the database (SQLite in {VAR})")
    supervisor.run_step("migrate", "--noinput", "-v", "0")
    supervisor.run_step("createcachetable")
    if os.environ.get("BACKSTOP_STATIC_COLLECTED") != "1":
        # Set by tests/test_demo.py under `make test`, which collected them already: collecting again
        # deletes and rewrites files that the other pytest worker's servers are reading.
        supervisor.run_step("collectstatic", "--noinput", "-v", "0")
    supervisor.run_step("render_50x", str(VAR / "50x.html"), "-v", "0")  # what nginx would serve
    supervisor.run_step("demo_setup", "--support-email", SUPPORT_EMAIL,
                        f"--support-password={values['support_password']}")  # "=": a password may start with "-"

    site = f"http://127.0.0.1:{WEB_PORT}"
    webhook_url = f"{site}/stripe/webhook/{values['webhook_uuid']}/"
    has_emulator = (ROOT / "stripe_emulator" / "__main__.py").exists()
    app_port = APP_PORT or free_port()
    web_argv = [
        str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{app_port}",
        "--workers", "2", "--threads", "4", "--graceful-timeout", "5",
        # The access log, with status tokens and client secrets replaced (config/log_redaction.py).
        "--access-logfile", "-", "--logger-class", "config.log_redaction.GunicornLogger",
    ]
    try:
        from demo_proxy import DemoProxy  # scripts/, next to this file

        supervisor.proxy = DemoProxy(("127.0.0.1", WEB_PORT), ("127.0.0.1", app_port),
                                     (VAR / "50x.html").read_bytes(), log=lambda m: say(f"proxy: {m}")).start()
        if has_emulator:
            supervisor.start("Stripe emulator", [
                PYTHON, "-m", "stripe_emulator", "--port", str(EMULATOR_PORT),
                "--webhook", f"{webhook_url}={values['webhook_secret']}",
                # Only what Backstop uses, as the endpoint would be set up in Stripe's dashboard.
                "--webhook-events", ",".join(STRIPE_EVENTS_USED),
                "--snapshot", str(VAR / "stripe-emulator.json"),
            ])
        web = supervisor.start("web server", web_argv)
        supervisor.start("task worker", [PYTHON, "manage.py", "qcluster"])
        wait_for_http(f"http://127.0.0.1:{app_port}/healthz")
        wait_for_http(f"{site}/healthz")  # and through the proxy
        if has_emulator:
            wait_for_http(f"http://127.0.0.1:{EMULATOR_PORT}/v3/")  # its Stripe.js: open to all, unlike /_emulator/
    except (RuntimeError, OSError) as exc:
        say(f"could not start: {exc}")
        supervisor.stop_all("start-up failed")
        return 1

    say("Backstop is running. Ctrl-C stops everything.")
    say(f"  Shop:            {site}/")
    say(f"  The product:     {site}/app/  (opens once you have paid; closes again after a refund)")
    say(f"  Support console: {site}/admin/  login {SUPPORT_EMAIL} / {values['support_password']}")
    say("                   two-factor is off in the demo; production asks for an authenticator code "
        "(support_staff --totp)")
    if has_emulator:
        say(f"  Stripe emulator: http://127.0.0.1:{EMULATOR_PORT}  (control API under /_emulator/, for "
            "programs on this machine sending the secret key as a bearer token)")
    say(f"  Emails sent:     {VAR / 'mail'}")
    say(f"  Support mail in: {site}/anymail/postmark/inbound/  (Postmark's inbound JSON; user and password "
        f"in {inbound_netrc}; README: 'Send the demo a support email')")
    say(f"  Health:          {site}/healthz")
    say(f"  Web server:      gunicorn pid {web.pid} on 127.0.0.1:{app_port}, behind the shop's proxy; kill it to "
        "see the page customers get while it is down")

    parent = os.getppid()
    web_started, quick_exits = time.monotonic(), 0
    while True:
        for name, process in supervisor.children:
            if process.poll() is None:
                continue
            if name == "web server":
                # Restarted as a service manager would, unless it keeps dying right after starting.
                quick_exits = quick_exits + 1 if time.monotonic() - web_started < 30 else 1
                if quick_exits <= 3:
                    say(f"the web server exited with status {process.returncode}; until it is back, the shop "
                        f"shows the 'briefly unavailable' page (502). Restarting it in {WEB_RESTART_DELAY} s")
                    time.sleep(WEB_RESTART_DELAY)
                    web = supervisor.restart(name, web_argv)
                    web_started = time.monotonic()
                    say(f"web server restarted (pid {web.pid})")
                    break
            supervisor.stop_all(f"{name} exited with status {process.returncode}")
            return 1
        if os.getppid() != parent:
            supervisor.stop_all("the process that started the demo is gone")
            return 0
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
