"""Named crash points, on the model of fail-rs and etcd's gofail.

    failpoint("settle.after_entitlement")

does nothing unless BACKSTOP_FAILPOINTS arms that name, so the money path can be broken on
purpose at each step (scripts/crash_matrix.py, the tests) and cost nothing otherwise (one global
read; scripts/bench_failpoints.py measures it). The variable is read once, when this module is
first imported, as fail-rs reads FAILPOINTS at setup: a process is armed for its whole life.
`reset()` reads it again (tests).

    BACKSTOP_FAILPOINTS="settle.after_entitlement=1*kill;outbox.after_esp_accepted=raise"

An entry is `name=[count*]action`. Actions: `kill` (SIGKILL this process, as a crash would: no
cleanup, no rollback but PostgreSQL's), `raise` (FailpointError), `sleep(ms)`, `off`. With a count
the action happens that many times, then the point is inert again. The names are the POINTS
below: an unknown name or a malformed entry is refused with the entry in the message, so a typo
never leaves a matrix row silently unarmed.

Each hit of an armed point is appended, before its action, to the file named by
BACKSTOP_FAILPOINTS_LOG ("<name> <action> <pid> <unix time>" per line): the harness reads it to
know the point was reached, even when the action killed the process (the write is in the page
cache before the kill, and the page cache outlives the process). With that file the counts are
shared by every process writing it, under a lock: `1*kill` kills one process once, and the
process started in its place (or gunicorn's next worker) runs through. Without it, counts are per
process. `hits` counts this process's hits, for tests.

Refused (ImproperlyConfigured) when DJANGO_DEBUG is off, unless BACKSTOP_FAILPOINTS_ALLOW is on:
production never dies of a stray variable. config/settings.py checks at start-up; the first point
a process reaches checks again (and parses the spec once), for processes that never load settings.
"""

import fcntl
import os
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool

ENV = "BACKSTOP_FAILPOINTS"
LOG_ENV = "BACKSTOP_FAILPOINTS_LOG"
ALLOW_ENV = "BACKSTOP_FAILPOINTS_ALLOW"

# Every named point, in the order a purchase meets them. tests/config/test_failpoints.py checks
# that each is placed in the code and that the code uses no other name.
POINTS = (
    "checkout.after_order_commit",  # the order row is committed, nothing asked of Stripe yet
    "checkout.after_customer",  # Stripe made the Customer; no PaymentIntent yet
    "checkout.after_payment_intent_created",  # Stripe made the PaymentIntent; we have not stored its id
    "webhook.after_signature",  # a verified event, not acted on
    "settle.after_stripe_read",  # Stripe's PaymentIntent read, no lock taken yet
    "settle.after_lock",  # the order is locked, nothing changed
    "settle.after_entitlement",  # entitlement written in the open transaction
    "settle.after_outbox_row",  # confirmation owed in the open transaction
    "settle.before_commit",  # every change made, not committed
    "webhook.inside_settle",  # settle.after_lock, when the webhook is the one settling
    "outbox.after_esp_accepted",  # the ESP took the email; we have not recorded it as sent
    "sweep.after_sync_page",  # one resource mirrored and its high-water mark saved
    "sweep.before_fix",  # the sweep found an order to settle or adopt, before it acts
    "adoption.after_order_recreated",  # the lost order recreated and committed, not settled
    "refund.after_stripe_accepted",  # Stripe accepted the refund; we have not recorded it
    "held_money.after_hold",  # money marked held in the open transaction, before the email is owed
    "support.after_receipt",  # a console action's one-time receipt claimed, before the action
    "reminders.after_email_row",  # a renewal email owed and committed, not yet sent
)

ACTIONS = ("kill", "raise", "sleep", "off")
_ENTRY = re.compile(r"(?:(?P<count>[0-9]+)\*)?(?P<action>kill|raise|off|sleep\((?P<ms>[0-9]+)\))")


class FailpointError(Exception):
    """Raised by a point armed with `raise`: an error nobody in Backstop expects."""


@dataclass(frozen=True)
class Action:
    kind: str  # kill | raise | sleep | off
    count: int | None = None  # None: every hit
    sleep_ms: int = 0


def parse(spec: str) -> dict[str, Action]:
    """`name=[count*]action;...` as {name: Action}; ValueError naming the bad entry."""
    armed = {}
    for entry in spec.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, action = entry.partition("=")
        name, action = name.strip(), action.strip()
        if not sep:
            raise ValueError(f"{entry!r} is not name=action")
        if name not in POINTS:
            raise ValueError(f"{name!r} is not a failpoint (config/failpoints.py lists them)")
        if name in armed:
            raise ValueError(f"{name!r} is armed twice")
        match = _ENTRY.fullmatch(action)
        if match is None:
            raise ValueError(f"{action!r} is not an action: kill, raise, sleep(ms) or off, optionally "
                             f"with a count such as 1*kill")
        count = int(match["count"]) if match["count"] is not None else None
        if count == 0:
            raise ValueError(f"{entry!r}: a count is at least 1 (use off to disarm)")
        kind = "sleep" if match["ms"] is not None else match["action"]
        armed[name] = Action(kind, count, int(match["ms"] or 0))
    return armed


def allowed() -> bool:
    return env_bool("DJANGO_DEBUG", False) or env_bool(ALLOW_ENV, False)


def refuse_unless_allowed():
    """Called from settings: armed failpoints outside DEBUG need BACKSTOP_FAILPOINTS_ALLOW."""
    spec = os.environ.get(ENV)
    if spec and not allowed():
        raise ImproperlyConfigured(f"{ENV} is set but DJANGO_DEBUG is off: failpoints crash processes on "
                                   f"purpose. Set {ALLOW_ENV}=1 if that is really wanted here.")
    if spec:
        try:
            parse(spec)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{ENV}: {exc}") from None


hits: Counter = Counter()  # this process's hits of armed points, by name
_fired: Counter = Counter()  # actions performed per name in this process (counts without a log)
_lock = threading.Lock()
_parsed: tuple[str, dict[str, Action]] = ("", {})
_spec = os.environ.get(ENV, "")


def failpoint(name: str):
    """The named point: nothing, unless BACKSTOP_FAILPOINTS arms it."""
    if _spec:
        _hit(name, _spec)


def _armed(spec: str) -> dict[str, Action]:
    global _parsed
    if _parsed[0] != spec:
        if not allowed():
            raise ImproperlyConfigured(f"{ENV} is set but DJANGO_DEBUG is off (set {ALLOW_ENV}=1 to allow).")
        try:
            _parsed = (spec, parse(spec))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{ENV}: {exc}") from None
    return _parsed[1]


def _hit(name: str, spec: str):
    action = _armed(spec).get(name)
    if action is None:
        return
    with _lock:
        hits[name] += 1
        log = os.environ.get(LOG_ENV)
        if log:
            kind = _logged_hit(log, name, action)
        else:
            kind = _counted(_fired[name], action)
            _fired[name] += kind != "off"
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "raise":
        raise FailpointError(f"failpoint {name}")
    elif kind == "sleep":
        time.sleep(action.sleep_ms / 1000)


def _counted(done: int, action: Action) -> str:
    return "off" if action.count is not None and done >= action.count else action.kind


def _logged_hit(path: str, name: str, action: Action) -> str:
    """Append this hit to the shared log under an exclusive lock, counting earlier actions in it."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        kind = action.kind
        if action.count is not None:
            with open(fd, closefd=False) as existing:
                done = sum(1 for line in existing if line.split()[:1] == [name] and line.split()[1] != "off")
            kind = _counted(done, action)
        os.write(fd, f"{name} {kind} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)  # releases the lock
    return kind


def read_log(path) -> list[tuple[str, str, int, float]]:
    """The hits in a failpoints log: (name, action, pid, unix time)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        name, kind, pid, at = line.split()
        out.append((name, kind, int(pid), float(at)))
    return out


def reset():
    """Read BACKSTOP_FAILPOINTS again and forget this process's counts (tests)."""
    global _parsed, _spec
    with _lock:
        hits.clear()
        _fired.clear()
        _parsed = ("", {})
        _spec = os.environ.get(ENV, "")
