"""The real Backstop stack for the load and chaos harnesses (scripts/load/run.py, chaos.py).

One copy of: starting PostgreSQL-side roles and pg_stat_statements on the throwaway server that
scripts/with-postgres.sh made, migrating and seeding (manage.py demo_setup), starting the Stripe
emulator, gunicorn and qcluster (and restarting one of them), CPU accounting from /proc, the
backlog probe, waiting for the drain, and the invariants asked of the database afterwards.
Everything started goes through `Stack`, whose `stop_all` stops it all.
"""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from demo import (  # noqa: E402  (scripts/demo.py: the same keys and helpers as `make demo`)
    EMULATOR_PUBLISHABLE_KEY,
    EMULATOR_SECRET_KEY,
    die_with_parent,
    free_port,
    stop_processes,
    wait_for_http,
)

from billing.stripe_events import STRIPE_EVENTS_USED  # noqa: E402  (plain data, no Django)

PYTHON = sys.executable
BIN = Path(PYTHON).parent
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLES = {"web": "bk_web", "worker": "bk_worker"}  # PostgreSQL roles, one per Backstop process kind


# -- CPU accounting from /proc ------------------------------------------------------------------


def _proc_table():
    """pid -> (ppid, cpu ticks of the process plus its reaped children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "pid (comm)": state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based here.
        table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def tree_cpu_seconds(roots, table=None):
    """CPU-seconds used so far by each root's process tree. A live process counts its own time and
    its reaped children's (cutime/cstime), so exited gunicorn workers and PostgreSQL backends that
    their parent has waited for are included and nothing is counted twice."""
    table = table or _proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    result = {}
    for name, root in roots.items():
        total, stack = 0, [root] if root in table else []
        while stack:
            pid = stack.pop()
            total += table[pid][1]
            stack.extend(children.get(pid, []))
        result[name] = total / CLK_TCK
    return result


def machine_busy_seconds():
    """CPU-seconds the whole machine has been busy (all cores, everything but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


# -- the stack ----------------------------------------------------------------------------------


class Stack:
    """The processes a harness started, each the leader of its own process group."""

    def __init__(self, out, say):
        self.out, self.say = out, say
        self.children = []  # (name, Popen, log file)
        self.commands = {}  # name -> (argv, env), to start it again

    def start(self, name, argv, env):
        log = open(self.out / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop_all)
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=die_with_parent)
        self.children.append((name, process, log))
        self.commands[name] = (argv, env)
        self.say(f"started {name} (pid {process.pid}, log {self.out / (name + '.log')})")
        return process

    def process(self, name):
        """The newest process started under this name."""
        return next(p for n, p, _log in reversed(self.children) if n == name)

    def kill(self, name):
        """SIGKILL the whole process group of `name` (its leader and every child), as a crash would."""
        process = self.process(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return process.pid

    def restart(self, name):
        """Start `name` again with the argv and environment it was first started with. Call it from
        the main thread: children die with the thread that started them (PR_SET_PDEATHSIG)."""
        argv, env = self.commands[name]
        for i, (n, process, log) in enumerate(self.children):
            if n == name and process.poll() is not None:
                log.close()
                del self.children[i]
                break
        return self.start(name, argv, env)

    def stop_all(self):
        stop_processes([(name, process) for name, process, _log in self.children], self.say)
        for _name, _process, log in self.children:
            log.close()
        self.children = []


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Database:
    """The harness's own connection (as the superuser the throwaway server was made with)."""

    def __init__(self, url):
        import psycopg

        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def one(self, sql, params=()):
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql, params=()):
        return self.conn.execute(sql, params).fetchall()

    def close(self):
        self.conn.close()


def enable_pg_stat_statements(url, say):
    """Preload pg_stat_statements on the throwaway server (one restart). False if not possible."""
    import psycopg

    try:
        db = Database(url)
        if "pg_stat_statements" not in db.one("SHOW shared_preload_libraries")[0]:
            data_dir = db.one("SHOW data_directory")[0]
            db.conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            db.close()
            subprocess.run(as_postgres([str(PGBIN / "pg_ctl"), "-D", data_dir, "-l", f"{data_dir}/server.log",
                                        "-m", "fast", "-w", "-t", "30", "restart"]),
                           check=True, stdout=subprocess.DEVNULL)
            db = Database(url)
        db.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        db.close()
        return True
    except (psycopg.Error, subprocess.CalledProcessError, OSError) as exc:
        say(f"pg_stat_statements unavailable ({exc}); counting transactions from pg_stat_database instead")
        return False


def role_url(url, role):
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def app_environment(database_url, app_port, emulator_port, webhook_uuid, webhook_secret, q_workers, secret_key=None):
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        # One key for every host: django-q2 signs each task with it (a worker with another key drops
        # the task: BadSignature), and so are the customers' links and sessions.
        "SECRET_KEY": secret_key or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HTTPS": "false",
        # Each simulated customer sends its own address in X-Forwarded-For, as nginx would report it.
        "TRUSTED_PROXY_COUNT": "1",
        "SITE_URL": f"http://127.0.0.1:{app_port}",
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": EMULATOR_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": EMULATOR_PUBLISHABLE_KEY,
        "STRIPE_API_BASE": f"http://127.0.0.1:{emulator_port}",
        "STRIPE_JS_URL": f"http://127.0.0.1:{emulator_port}/v3",
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "STRIPE_WEBHOOK_UUID": webhook_uuid,
        "EMAIL_BACKEND": "anymail.backends.test.EmailBackend",  # sends nothing; the outbox is real
        "Q_WORKERS": str(q_workers),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def get_json(url):
    # The emulator's control API asks for its secret key (docs/emulator.md); Backstop's pages ignore it.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {EMULATOR_SECRET_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# -- measuring one level ------------------------------------------------------------------------


def percentile(values, pct):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * pct / 100
    low = int(k)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


class Probe:
    def __init__(self, db, emulator, has_pss):
        self.db, self.emulator, self.has_pss = db, emulator, has_pss

    def backlog(self):
        hooks = get_json(f"{self.emulator}/_emulator/webhooks")
        webhooks = hooks["queued"] + hooks["in_flight"] + hooks["held"]
        tasks = self.db.one("SELECT count(*) FROM django_q_ormq")[0]
        return webhooks, tasks

    def outbox_pending(self, first_order_id):
        return self.db.one("""SELECT count(*) FROM outbox_outboundemail e JOIN billing_order o ON o.id = e.about_id
                                AND e.about_type_id = (SELECT id FROM django_content_type
                                    WHERE app_label = 'billing' AND model = 'order')
                              WHERE o.id > %s AND e.status IN ('pending', 'sending')""", (first_order_id,))[0]

    def mirror_missing(self, first_order_id):
        """Paid orders whose charge is not in dj-stripe's mirror yet. Webhooks do not mirror
        (docs/decisions/0009-webhooks-settle-the-mirror-pulls.md); the sweep's pull sync does, within
        a minute, and that work is part of a purchase's cost."""
        return self.db.one("""SELECT count(*) FROM billing_order o WHERE o.id > %s AND o.paid_at IS NOT NULL
                              AND NOT EXISTS (SELECT 1 FROM djstripe_charge c WHERE c.status = 'succeeded'
                                              AND c.payment_intent_id = o.stripe_payment_intent_id)""",
                           (first_order_id,))[0]

    def sql_counters(self):
        if self.has_pss:
            rows = self.db.all("""SELECT r.rolname, sum(s.calls), sum(s.calls) FILTER
                                         (WHERE s.query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)')
                                  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                                  WHERE r.rolname = ANY(%s) GROUP BY r.rolname""", (list(ROLES.values()),))
            return {role: (int(total or 0), int(stmts or 0)) for role, total, stmts in rows}
        row = self.db.one("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return {"all": (int(row[0]), int(row[0]))}

    def statements(self):
        """Every statement the app's roles ran since the reset, slowest in total first: (role, total ms,
        calls, query text)."""
        if not self.has_pss:
            return []
        return self.db.all("""SELECT r.rolname, s.total_exec_time, s.calls, regexp_replace(s.query, '\\s+', ' ', 'g')
                              FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                              WHERE r.rolname = ANY(%s) ORDER BY 2 DESC""", (list(ROLES.values()),))

    def top_statements(self, limit=3, rows=None):
        rows = self.statements() if rows is None else rows
        total = sum(r[1] for r in rows) or 1
        return [{"share": round(100 * t / total, 1), "calls": int(c), "mean_ms": round(t / max(c, 1), 3),
                 "query": q[:90]} for _role, t, c, q in rows[:limit]]

    def stripe_requests(self):
        """The emulator's API requests so far: {(key kind, method, path with ids as {}): count}."""
        state = get_json(f"{self.emulator}/_emulator/state")
        return {(r["key"], r["method"], r["path"]): r["count"] for r in state.get("requests", [])}

    def reset_statements(self):
        if self.has_pss:
            self.db.conn.execute("SELECT pg_stat_statements_reset()")




# -- starting it, draining it, checking it ------------------------------------------------------


@dataclass
class Backstop:
    """A started stack: where everything listens, and the handles to measure it."""

    stack: Stack
    db: Database
    probe: Probe
    has_pss: bool
    app: str  # http://127.0.0.1:<gunicorn port>
    emulator: str  # http://127.0.0.1:<emulator port>
    env: dict  # the web server's environment (manage.py commands can use it too)
    roots: dict = field(default_factory=dict)  # process kind -> pid, for tree_cpu_seconds
    apps: list = field(default_factory=list)  # every host's web server, app first

    def manage(self, *args, **kwargs):
        """Run a manage.py command against the stack's database, as the superuser."""
        env = dict(self.env, DATABASE_URL=self.db.url)
        return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, **kwargs)


def _migrated_dump() -> Path:
    """Where a freshly migrated database is kept between runs, named after every migration file (and
    the pinned packages, whose migrations count too): any change makes a new one."""
    digest = hashlib.sha256(Path(ROOT, "requirements.txt").read_bytes())
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return ROOT / "var" / "load-db" / f"migrated-{digest.hexdigest()[:16]}.dump"


def _migrated_already(url) -> bool:
    db = Database(url)
    try:
        return db.one("SELECT to_regclass('public.django_migrations') IS NOT NULL")[0]
    finally:
        db.close()


def _restore_migrated(url, say) -> bool:
    """Restore the migrated database kept by an earlier run (seconds instead of minutes of migrations
    on a busy machine); False if there is none. `migrate` still runs after it, and finds nothing to do."""
    dump = _migrated_dump()
    if not dump.exists():
        return False
    # Everything but the public schema itself (and its comment): the new database has it already.
    contents = subprocess.run([str(PGBIN / "pg_restore"), "-l", str(dump)], check=True, capture_output=True,
                              text=True).stdout
    listing = dump.with_suffix(".list")
    listing.write_text("".join(line + "\n" for line in contents.splitlines() if "SCHEMA - public" not in line
                               and "COMMENT - SCHEMA public" not in line))
    subprocess.run([str(PGBIN / "pg_restore"), "--no-owner", "--no-privileges", "-L", str(listing), "-d", url,
                    str(dump)], check=True, stdout=subprocess.DEVNULL)
    say(f"restored the migrated database from {dump.relative_to(ROOT)}")
    return True


def _keep_migrated(url, say):
    dump = _migrated_dump()
    dump.parent.mkdir(parents=True, exist_ok=True)
    # Our schema and the extensions migrations made (pg_trgm), not the harness's pg_stat_statements,
    # which the next run has created before it restores.
    db = Database(url)
    extensions = [name for (name,) in db.all(
        "SELECT extname FROM pg_extension WHERE extname NOT IN ('plpgsql', 'pg_stat_statements')")]
    db.close()
    subprocess.run([str(PGBIN / "pg_dump"), "-Fc", "-n", "public", *[f"--extension={name}" for name in extensions],
                    "--no-owner", "--no-privileges", "-f", str(dump), url], check=True)
    say(f"kept the migrated database in {dump.relative_to(ROOT)} for the next run")


def host_name(kind, host):
    """Process names: host 1 keeps the plain names ("web", "worker"), others get "-2", "-3"."""
    return kind if host == 1 else f"{kind}-{host}"


def start_pgbouncer(stack, url, out, say):
    """PgBouncer in transaction mode in front of the throwaway PostgreSQL, as managed PostgreSQL
    offerings put it; returns the URL to reach the same database through it (or None without it)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        say("pgbouncer is not installed (apt-get install pgbouncer); running without it")
        return None
    scheme, rest = url.split("://", 1)
    credentials, location = rest.split("@", 1)
    hostport, _, dbname = location.partition("/")
    host, _, port = hostport.partition(":")
    listen = free_port()
    work = Path(tempfile.mkdtemp(prefix="backstop-pgbouncer-"))
    users = ["postgres", *ROLES.values(), credentials.split(":")[0]]
    (work / "users.txt").write_text("".join(f'"{user}" ""\n' for user in sorted(set(users))))
    (work / "pgbouncer.ini").write_text(f"""[databases]
{dbname.split("?")[0]} = host={host} port={port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {work}/users.txt
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = {out}/pgbouncer-server.log
""")
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        Path(out, "pgbouncer-server.log").touch()
        shutil.chown(Path(out, "pgbouncer-server.log"), "postgres")
    stack.start("pgbouncer", as_postgres([binary, str(work / "pgbouncer.ini")]), dict(os.environ))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), timeout=1):
            break
        time.sleep(0.1)
    say(f"PgBouncer (transaction pooling) on 127.0.0.1:{listen}")
    return f"{scheme}://{credentials}@127.0.0.1:{listen}/{dbname}"


def start_backstop(stack, url, *, web_workers, web_threads, q_workers, webhook_workers, say, hosts=1,
                   cron_every=20, pooled_url=None, emulator_args=()):
    """pg_stat_statements, one role per process kind, migrate, demo_setup, then the emulator
    (delivering webhooks from `webhook_workers` threads), gunicorn and qcluster ("emulator", "web"
    and "worker" in `stack`, so `stack.kill`/`stack.restart` work on them).

    With `hosts` > 1, each further host gets its own gunicorn and qcluster on one PostgreSQL
    ("web-2", "worker-2", ...), every host runs the sweep from cron every `cron_every` seconds
    ("cron-1", "cron-2", ...) besides the django-q2 schedule, and Stripe has one webhook endpoint
    per host: every event reaches every host, at about the same moment (harsher than a load
    balancer, which would pick one). With `pooled_url` (start_pgbouncer), every app process
    reaches PostgreSQL through PgBouncer's transaction pooling; migrations go direct."""
    has_pss = enable_pg_stat_statements(url, say)
    db = Database(url)
    for role in ROLES.values():
        if not db.one("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
            db.conn.execute(f"CREATE ROLE {role} SUPERUSER LOGIN")  # trust auth on the throwaway server
    app_ports, emulator_port = [free_port() for _ in range(hosts)], free_port()
    webhook_uuid, webhook_secret = str(uuid.uuid4()), "whsec_" + secrets.token_hex(24)
    app_url, secret_key = pooled_url or url, secrets.token_urlsafe(50)
    envs = [app_environment(role_url(app_url, ROLES["web"]), port, emulator_port, webhook_uuid, webhook_secret,
                            q_workers, secret_key) for port in app_ports]
    if pooled_url:
        for host_env in envs:
            host_env["DB_TRANSACTION_POOLING"] = "true"
    env = envs[0]

    setup_env = dict(env, DATABASE_URL=url)
    # A copy of a migrated database (the crash matrix's lanes, made from pytest's template) has
    # nothing to restore and nothing worth keeping; only a fresh one is restored, or migrated and kept.
    fresh = not _migrated_already(url)
    restored = fresh and _restore_migrated(url, say)
    if fresh and not restored:
        say("migrating (about 10 s of CPU on a fresh database)")
    steps = [["migrate", "--noinput", "-v", "0"], ["createcachetable"], ["collectstatic", "--noinput", "-v", "0"],
             ["demo_setup", f"--support-password={secrets.token_hex(12)}"]]
    if os.environ.get("BACKSTOP_STATIC_COLLECTED") == "1":
        # Collected already, and servers beside us serve it: collectstatic deletes and rewrites the
        # manifest and the CSS under them (scripts/test.sh runs the crash matrix beside pytest).
        steps.remove(["collectstatic", "--noinput", "-v", "0"])
    for step in steps:
        subprocess.run([PYTHON, "manage.py", *step], cwd=ROOT, env=setup_env, check=True, stdout=subprocess.DEVNULL)
        if step[0] == "migrate" and fresh and not restored:
            _keep_migrated(url, say)

    webhooks = []
    for port in app_ports:
        webhooks += ["--webhook", f"http://127.0.0.1:{port}/stripe/webhook/{webhook_uuid}/={webhook_secret}"]
    emulator = stack.start("emulator", [
        PYTHON, "-m", "stripe_emulator", "--port", str(emulator_port), "--log-level", "WARNING", *webhooks,
        "--webhook-workers", str(webhook_workers), "--webhook-events", ",".join(STRIPE_EVENTS_USED),
        *emulator_args], env)
    roots = {"emulator": emulator.pid}
    for host, (port, host_env) in enumerate(zip(app_ports, envs, strict=True), start=1):
        web = stack.start(host_name("web", host), [
            str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers),
            "--threads", str(web_threads), "--graceful-timeout", "5",
            # As deployed (docs/deploy/backstop-web.service): the load's customers keep their
            # connections as nginx does, and at gunicorn's default 2 s a request sent as gunicorn
            # closed an idle one failed with no answer (locust's "HTTP 0").
            "--keep-alive", "75"], host_env)
        worker = stack.start(host_name("worker", host), [PYTHON, "manage.py", "qcluster"],
                             dict(host_env, DATABASE_URL=role_url(app_url, ROLES["worker"])))
        roots[host_name("web", host)], roots[host_name("worker", host)] = web.pid, worker.pid
        if hosts > 1:
            cron = stack.start(f"cron-{host}", ["bash", "-c", f"while :; do {PYTHON} manage.py reconcile -v 0; "
                                                f"sleep {int(cron_every)}; done"],
                               dict(host_env, DATABASE_URL=role_url(app_url, ROLES["worker"])))
            roots[f"cron-{host}"] = cron.pid
    for port in app_ports:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
    wait_for_http(f"http://127.0.0.1:{emulator_port}/v3/")  # its Stripe.js: open to all, unlike /_emulator/
    data_dir = db.one("SHOW data_directory")[0]
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0]) if os.access(data_dir, os.R_OK) else None
    if postmaster:
        roots["postgres"] = postmaster
    else:
        say("cannot read the PostgreSQL data directory: no PostgreSQL CPU figures")
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    apps = [f"http://127.0.0.1:{port}" for port in app_ports]
    return Backstop(stack=stack, db=db, probe=Probe(db, emulator_url, has_pss), has_pss=has_pss,
                    app=apps[0], emulator=emulator_url, env=env, roots=roots, apps=apps)


def wait_for_drain(probe, first_order_id, timeout, quiet_polls=2, poll_seconds=0.5):
    """Wait until no webhook is queued, in flight or held, the task queue is empty and no email of
    these orders is waiting, `quiet_polls` polls in a row. Returns (drained, seconds waited)."""
    started, quiet = time.monotonic(), 0
    while True:
        hooks, tasks = probe.backlog()
        idle = hooks == 0 and tasks == 0 and probe.outbox_pending(first_order_id) == 0
        quiet = quiet + 1 if idle else 0
        if quiet >= quiet_polls or time.monotonic() - started > timeout:
            return quiet >= quiet_polls, time.monotonic() - started
        time.sleep(poll_seconds)


def wait_for_mirror(probe, first_order_id, timeout, poll_seconds=1.0):
    """Wait until every paid order's charge is mirrored (the scheduled sweep's pull sync runs every
    minute). Returns (caught up, seconds waited)."""
    started = time.monotonic()
    while probe.mirror_missing(first_order_id):
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started
        time.sleep(poll_seconds)
    return True, time.monotonic() - started


INVARIANTS = ["orders", "active", "paid_not_active", "confirmation_not_1", "confirmation_unsent", "double_charged",
              "entitlements_not_1"]


def invariants(db, first_order_id):
    """Counts over the orders after `first_order_id`: all zero but orders and active is healthy."""
    return dict(zip(INVARIANTS, db.one("""
        WITH o AS (SELECT * FROM billing_order WHERE id > %(first)s)
        SELECT (SELECT count(*) FROM o),
               (SELECT count(*) FROM o WHERE state = 'active'),
               (SELECT count(*) FROM o WHERE paid_at IS NOT NULL AND state <> 'active'),
               (SELECT count(*) FROM o WHERE state = 'active' AND (SELECT count(*) FROM outbox_outboundemail e
                    WHERE e.about_id = o.id AND e.kind = 'confirmation'
                    AND e.about_type_id = (SELECT id FROM django_content_type
                        WHERE app_label = 'billing' AND model = 'order')) <> 1),
               (SELECT count(*) FROM o WHERE state = 'active' AND NOT EXISTS (SELECT 1 FROM outbox_outboundemail e
                    WHERE e.about_id = o.id AND e.kind = 'confirmation' AND e.status = 'sent'
                    AND e.about_type_id = (SELECT id FROM django_content_type
                        WHERE app_label = 'billing' AND model = 'order'))),
               (SELECT count(*) FROM (SELECT c.payment_intent_id FROM djstripe_charge c
                    JOIN o ON o.stripe_payment_intent_id = c.payment_intent_id
                    WHERE c.status = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d),
               (SELECT count(*) FROM o WHERE state = 'active' AND (SELECT count(*) FROM accounts_entitlement t
                    WHERE t.order_id = o.id) <> 1)
        """, {"first": first_order_id}), strict=True))


def harness_main(kind, out, run, say):
    """The start and end `make load` and `make chaos` share: run under a throwaway PostgreSQL
    (re-executing under scripts/with-postgres.sh when started without one), write to `out` (default
    var/<kind>/<timestamp>), call run(url, out, stack), and stop everything started, whatever
    happens: Ctrl-C, SIGTERM and SIGHUP included."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        script = ROOT / "scripts" / "with-postgres.sh"
        os.execv(str(script), [str(script), PYTHON, *sys.argv])
    out = out or ROOT / "var" / kind / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("locust", path=str(BIN)) is None:
        say(f"locust is not installed in {BIN}: run `make .venv/.dev` or pip install -r requirements-dev.txt")
        return 2
    stack = Stack(out, say)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # SIGINT too: a shell starting us in the background would have left Ctrl-C ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        return run(url, out, stack)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        say("stopping everything")
        stack.stop_all()
