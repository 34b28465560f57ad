"""`make firedrill`: every fire drill against a fresh demo stack, started and stopped here.

Starts scripts/demo.py (the supervisor behind `make demo`: the Stripe emulator, gunicorn and the
django-q2 cluster on SQLite) in a throwaway var dir on free ports, so a running demo is left
alone. Once it says Backstop is running, runs `manage.py firedrill` with the demo's own
environment, then stops the stack whatever happened: a failure, Ctrl-C or SIGTERM. The var dir
is deleted after a clean run and kept (with the stack's log) when a drill failed.

Arguments go to the command: `make firedrill FIREDRILL_ARGS="--drill killed-after-charge"`.
"""

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# A fresh SQLite database migrates in about 10 s (decision 0035); a busy machine takes longer.
START_TIMEOUT = 300
READY_LINE = "Backstop is running"


def say(message):
    print(f"[firedrill] {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_demo():
    """scripts/demo.py as a module, to build exactly the environment it gives its processes."""
    spec = importlib.util.spec_from_file_location("backstop_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until_running(stack, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if READY_LINE in log_path.read_text(errors="replace"):
            return True
        if stack.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def stop(stack):
    if stack.poll() is None:
        stack.send_signal(signal.SIGTERM)  # the demo stops its children in order
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            say("the stack did not stop in time; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.pid, signal.SIGKILL)  # anything left in its process group
    stack.wait()


def main(argv):
    # SIGTERM should stop the stack as Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    var_dir = Path(tempfile.mkdtemp(prefix="backstop-firedrill-"))
    # demo.py reads these at import and at start: both it and the module we load see them.
    os.environ.update({"BACKSTOP_VAR_DIR": str(var_dir), "DEMO_PORT": str(free_port()),
                       "EMULATOR_PORT": str(free_port())})
    log_path = var_dir / "stack.log"
    status = 1
    say(f"starting the demo stack in {var_dir} (web :{os.environ['DEMO_PORT']}, "
        f"emulator :{os.environ['EMULATOR_PORT']}); its log: {log_path}")
    with open(log_path, "w") as log:
        # Its own session: Ctrl-C reaches us, and we stop it in order.
        stack = subprocess.Popen([PYTHON, "scripts/demo.py"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    started = time.monotonic()
    try:
        if not wait_until_running(stack, log_path):
            say("the demo stack did not start; the end of its log:")
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-20:]), flush=True)
            return 1
        say(f"the stack is running after {time.monotonic() - started:.0f} s; running the drills")
        demo = load_demo()
        env = demo.demo_environment(demo.load_secrets())
        env["LOG_LEVEL"] = "WARNING"  # the table, not a line per Stripe call
        status = subprocess.run([PYTHON, "manage.py", "firedrill", *argv], cwd=ROOT, env=env).returncode
        return status
    finally:
        say("stopping the demo stack")
        stop(stack)
        if status == 0:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            say(f"kept {var_dir} for a look (stack.log, backstop.sqlite3, mail/)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
