"""`make load`: the real stack on a throwaway PostgreSQL, customers from locust, one table per level.

    scripts/with-postgres.sh .venv/bin/python scripts/load/run.py [--levels 1,10,25] [--duration 30] ...

(Run without DATABASE_URL, it re-runs itself under scripts/with-postgres.sh.) It turns on
pg_stat_statements (restarting that throwaway server once), migrates, seeds the plan, the schedules
and the webhook endpoint (manage.py demo_setup), then starts the Stripe emulator (delivering
webhooks to the app from --webhook-workers threads), gunicorn and qcluster, each connecting to
PostgreSQL as its own role so statements can be counted per process. For each level it runs locust
headless (scripts/load/locustfile.py: full purchases as a browser makes them), samples the webhook
backlog and the task queue, waits for both to drain, and prints: purchases/s, purchase time
p50/p95/p99, errors, CPU-seconds per purchase by process, SQL statements per purchase, the backlog
and drain time, the confirmation-email delay, and the invariants after the drain.

Everything it starts is stopped on exit, Ctrl-C included. Output (logs, locust CSVs, per-purchase
JSON lines, the summary as JSON) goes to var/load/<timestamp>/.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
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


def say(message):
    print(f"[load] {message}", flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--levels", default="1,10,25", help="concurrent customers per level, comma-separated")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per level")
    parser.add_argument("--think-time", type=float, default=0.0, help="seconds between a customer's purchases")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--q-workers", type=int, default=2, help="django-q2 worker processes (Q_WORKERS)")
    parser.add_argument("--webhook-workers", type=int, default=16, help="emulator webhook deliveries in flight")
    parser.add_argument("--drain-timeout", type=int, default=300, help="seconds to wait for backlogs to drain")
    parser.add_argument("--out", type=Path, help="output directory (default var/load/<timestamp>)")
    return parser.parse_args()


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
    def __init__(self, out):
        self.out = out
        self.children = []  # (name, Popen, log file)

    def start(self, name, argv, env):
        log = open(self.out / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop_all)
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=die_with_parent)
        self.children.append((name, process, log))
        say(f"started {name} (pid {process.pid}, log {self.out / (name + '.log')})")
        return process

    def stop_all(self):
        stop_processes([(name, process) for name, process, _log in self.children], say)
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


def enable_pg_stat_statements(url):
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


def app_environment(database_url, app_port, emulator_port, webhook_uuid, webhook_secret, q_workers):
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
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
    with urllib.request.urlopen(url, timeout=5) as response:
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
        return self.db.one("""SELECT count(*) FROM billing_outboundemail e JOIN billing_order o ON o.id = e.order_id
                              WHERE o.id > %s AND e.status IN ('pending', 'sending')""", (first_order_id,))[0]

    def sql_counters(self):
        if self.has_pss:
            rows = self.db.all("""SELECT r.rolname, sum(s.calls), sum(s.calls) FILTER
                                         (WHERE s.query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)')
                                  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                                  WHERE r.rolname = ANY(%s) GROUP BY r.rolname""", (list(ROLES.values()),))
            return {role: (int(total or 0), int(stmts or 0)) for role, total, stmts in rows}
        row = self.db.one("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return {"all": (int(row[0]), int(row[0]))}

    def top_statements(self, limit=3):
        if not self.has_pss:
            return []
        rows = self.db.all("""SELECT s.total_exec_time, s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90)
                              FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                              WHERE r.rolname = ANY(%s) ORDER BY 1 DESC""", (list(ROLES.values()),))
        total = sum(r[0] for r in rows) or 1
        return [{"share": round(100 * t / total, 1), "calls": int(c), "query": q} for t, c, q in rows[:limit]]

    def reset_statements(self):
        if self.has_pss:
            self.db.conn.execute("SELECT pg_stat_statements_reset()")


def run_level(users, args, probe, roots, out, host):
    db = probe.db
    first_order_id = db.one("SELECT coalesce(max(id), 0) FROM billing_order")[0]
    results_file = out / f"purchases-{users}.jsonl"
    probe.reset_statements()
    sql_before = probe.sql_counters()
    cpu_before, busy_before = tree_cpu_seconds(roots), machine_busy_seconds()
    env = dict(os.environ, LOAD_RESULTS_FILE=str(results_file), LOAD_THINK_TIME=str(args.think_time))
    say(f"level {users}: {users} customers for {args.duration} s")
    started, wall_started = time.monotonic(), time.time()
    with open(out / f"locust-{users}.log", "wb") as log:
        locust = subprocess.Popen(
            [str(BIN / "locust"), "-f", str(ROOT / "scripts/load/locustfile.py"), "--headless",
             "-u", str(users), "-r", str(users), "--run-time", f"{args.duration}s", "--stop-timeout", "90",
             "--host", host, "--csv", str(out / f"locust-{users}"), "--only-summary", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent)
        roots = {**roots, "locust": locust.pid}
        max_hooks = max_tasks = 0
        cpu_locust = 0.0
        while locust.poll() is None:
            table = _proc_table()
            cpu_locust = max(cpu_locust, tree_cpu_seconds({"locust": locust.pid}, table)["locust"])
            hooks, tasks = probe.backlog()
            max_hooks, max_tasks = max(max_hooks, hooks), max(max_tasks, tasks)
            time.sleep(1)
    load_seconds = time.monotonic() - started
    hooks_at_end, tasks_at_end = probe.backlog()
    drain_started, drained_for = time.monotonic(), 0
    while True:
        hooks, tasks = probe.backlog()
        quiet = hooks == 0 and tasks == 0 and probe.outbox_pending(first_order_id) == 0
        drained_for = drained_for + 1 if quiet else 0
        if drained_for >= 2 or time.monotonic() - drain_started > args.drain_timeout:
            break
        time.sleep(0.5)
    drain_seconds = time.monotonic() - drain_started
    drained = drained_for >= 2
    cpu_after = tree_cpu_seconds({k: v for k, v in roots.items() if k != "locust"})
    busy = machine_busy_seconds() - busy_before
    window = time.monotonic() - started
    sql_after = probe.sql_counters()
    top = probe.top_statements()

    purchases = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()] \
        if results_file.exists() else []
    ok = [p for p in purchases if p["ok"]]
    errors = [p for p in purchases if not p["ok"]]
    # Throughput over the load window only: purchases that finished within --duration of the start.
    in_window = [p for p in ok if p["started"] + p["seconds"] <= wall_started + args.duration]
    paid = db.one("SELECT count(*) FROM billing_order WHERE id > %s AND paid_at IS NOT NULL", (first_order_id,))[0]
    per = max(paid, 1)
    cpu = {name: (cpu_after.get(name, 0) - cpu_before.get(name, 0)) / per
           for name in ("web", "worker", "postgres", "emulator")}
    sql = {role: ((sql_after.get(role, (0, 0))[0] - sql_before.get(role, (0, 0))[0]) / per,
                  (sql_after.get(role, (0, 0))[1] - sql_before.get(role, (0, 0))[1]) / per) for role in sql_after}
    delays = [float(r[0]) for r in db.all("""
        SELECT extract(epoch FROM e.sent_at - o.paid_at) FROM billing_outboundemail e
        JOIN billing_order o ON o.id = e.order_id
        WHERE o.id > %s AND e.kind = 'confirmation' AND e.sent_at IS NOT NULL""", (first_order_id,))]
    invariants = dict(zip(
        ["orders", "active", "paid_not_active", "confirmation_not_1", "confirmation_unsent", "double_charged",
         "entitlements_not_1"],
        db.one("""
        WITH o AS (SELECT * FROM billing_order WHERE id > %(first)s)
        SELECT (SELECT count(*) FROM o),
               (SELECT count(*) FROM o WHERE state = 'active'),
               (SELECT count(*) FROM o WHERE paid_at IS NOT NULL AND state <> 'active'),
               (SELECT count(*) FROM o WHERE state = 'active' AND (SELECT count(*) FROM billing_outboundemail e
                    WHERE e.order_id = o.id AND e.kind = 'confirmation') <> 1),
               (SELECT count(*) FROM o WHERE state = 'active' AND NOT EXISTS (SELECT 1 FROM billing_outboundemail e
                    WHERE e.order_id = o.id AND e.kind = 'confirmation' AND e.status = 'sent')),
               (SELECT count(*) FROM (SELECT c.payment_intent_id FROM djstripe_charge c
                    JOIN o ON o.stripe_payment_intent_id = c.payment_intent_id
                    WHERE c.status = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d),
               (SELECT count(*) FROM o WHERE state = 'active' AND (SELECT count(*) FROM accounts_entitlement t
                    WHERE t.order_id = o.id) <> 1)
        """, {"first": first_order_id}), strict=True))
    durations = [p["seconds"] for p in ok]
    returns = [p["return_seconds"] for p in ok if "return_seconds" in p]
    return {
        "users": users,
        "load_seconds": round(load_seconds, 1),
        "purchases_ok": len(ok),
        "purchases_failed": len(errors),
        "purchases_per_s": round(len(in_window) / args.duration, 2),
        "purchase_seconds": {f"p{p}": _r(percentile(durations, p)) for p in (50, 95, 99)},
        "return_page_seconds": {f"p{p}": _r(percentile(returns, p)) for p in (50, 95, 99)},
        "active_on_return": sum(1 for p in ok if p.get("return_status") == "active"),
        "errors": _error_counts(errors),
        "paid_orders": paid,
        "cpu_s_per_purchase": {k: round(v, 3) for k, v in cpu.items()},
        "backstop_cpu_s_per_purchase": round(sum(cpu[k] for k in ("web", "worker", "postgres")), 3),
        "locust_cpu_s": round(cpu_locust, 1),
        # Everything the machine did in the level (load + drain), to see what the tree accounting
        # missed and whether something else on the machine was competing with the run.
        "machine_busy_cores": round(busy / window, 2),
        "machine_other_cpu_s": round(busy - cpu_locust - sum(cpu.values()) * per, 1),
        "window_seconds": round(window, 1),
        "sql_per_purchase": {k: {"all": round(v[0], 1), "without_tx_control": round(v[1], 1)} for k, v in sql.items()},
        "top_statements": top,
        "backlog_max": {"webhooks": max_hooks, "tasks": max_tasks},
        "backlog_at_load_end": {"webhooks": hooks_at_end, "tasks": tasks_at_end},
        "drain_seconds": round(drain_seconds, 1),
        "drained": drained,
        "email_delay_seconds": {"p50": _r(percentile(delays, 50)), "p95": _r(percentile(delays, 95)),
                                "count": len(delays)},
        "invariants": invariants,
    }


def _r(value):
    return None if value is None else round(value, 3)


def _error_counts(errors):
    counts = {}
    for p in errors:
        counts[p["error"][:80]] = counts.get(p["error"][:80], 0) + 1
    return counts


def print_level(r):
    s, c = r["purchase_seconds"], r["cpu_s_per_purchase"]
    say(f"=== {r['users']} customers: {r['purchases_ok']} purchases ({r['purchases_failed']} failed), "
        f"{r['purchases_per_s']} purchases/s")
    say(f"  purchase time (checkout to 'active') p50 {s['p50']} s, p95 {s['p95']} s, p99 {s['p99']} s; "
        f"status page said 'active' on return for {r['active_on_return']}/{r['purchases_ok']}")
    for error, count in r["errors"].items():
        say(f"  error x{count}: {error}")
    say(f"  CPU-s per paid order: web {c['web']}, worker {c['worker']}, postgres {c['postgres']} "
        f"= {r['backstop_cpu_s_per_purchase']} Backstop; emulator {c['emulator']} (locust used {r['locust_cpu_s']} s)")
    say(f"  machine: {r['machine_busy_cores']} of {os.cpu_count()} cores busy over {r['window_seconds']} s; "
        f"{r['machine_other_cpu_s']} CPU-s not from this stack or locust (other work on the machine, if large)")
    say("  SQL per paid order: " + ", ".join(f"{k} {v['all']} ({v['without_tx_control']} without BEGIN/COMMIT)"
                                              for k, v in r["sql_per_purchase"].items()))
    for t in r["top_statements"]:
        say(f"    {t['share']}% of statement time, {t['calls']} calls: {t['query']}")
    say(f"  backlog max: {r['backlog_max']['webhooks']} webhooks, {r['backlog_max']['tasks']} tasks; at load end "
        f"{r['backlog_at_load_end']['webhooks']} / {r['backlog_at_load_end']['tasks']}; drained in "
        f"{r['drain_seconds']} s{'' if r['drained'] else ' (NOT drained: timeout)'}")
    e = r["email_delay_seconds"]
    say(f"  confirmation email after payment: p50 {e['p50']} s, p95 {e['p95']} s ({e['count']} sent)")
    say("  invariants: " + ", ".join(f"{k} {v}" for k, v in r["invariants"].items()))


def print_table(results):
    head = ("| customers | purchases/s | p50 / p95 / p99 s | errors | CPU-s/purchase web + worker + pg = total "
            "| SQL/purchase web + worker | webhook backlog max, drain s | email delay p50 / p95 s | invariants |")
    print(head)
    print("|" + " --- |" * 9)
    for r in results:
        s, c, e, inv = r["purchase_seconds"], r["cpu_s_per_purchase"], r["email_delay_seconds"], r["invariants"]
        q = r["sql_per_purchase"]
        sql = " + ".join(str(q[k]["all"]) for k in (*ROLES.values(), "all") if k in q)
        bad = sum(v for k, v in inv.items() if k not in ("orders", "active"))
        print(f"| {r['users']} | {r['purchases_per_s']} | {s['p50']} / {s['p95']} / {s['p99']} | "
              f"{r['purchases_failed']} | {c['web']} + {c['worker']} + {c['postgres']} = "
              f"{r['backstop_cpu_s_per_purchase']} | {sql} | {r['backlog_max']['webhooks']}, {r['drain_seconds']} | "
              f"{e['p50']} / {e['p95']} | {'ok' if bad == 0 else inv} |")


def main():
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        script = ROOT / "scripts" / "with-postgres.sh"
        os.execv(str(script), [str(script), PYTHON, *sys.argv])
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    out = args.out or ROOT / "var" / "load" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("locust", path=str(BIN)) is None:
        say(f"locust is not installed in {BIN}: run `make .venv/.dev` or pip install -r requirements-dev.txt")
        return 2

    stack = Stack(out)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return _run(args, levels, url, out, stack)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        say("stopping everything")
        stack.stop_all()


def _run(args, levels, url, out, stack):
    has_pss = enable_pg_stat_statements(url)
    db = Database(url)
    for role in ROLES.values():
        if not db.one("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
            db.conn.execute(f"CREATE ROLE {role} SUPERUSER LOGIN")  # trust auth on the throwaway server
    app_port, emulator_port = free_port(), free_port()
    webhook_uuid, webhook_secret = str(uuid.uuid4()), "whsec_" + secrets.token_hex(24)
    env = app_environment(role_url(url, ROLES["web"]), app_port, emulator_port, webhook_uuid, webhook_secret,
                          args.q_workers)
    worker_env = dict(env, DATABASE_URL=role_url(url, ROLES["worker"]))

    say("migrating (dj-stripe's migrations take about 30 s of CPU on a fresh database)")
    setup_env = dict(env, DATABASE_URL=url)
    for step in (["migrate", "--noinput", "-v", "0"], ["createcachetable"], ["collectstatic", "--noinput", "-v", "0"],
                 ["demo_setup", "--support-password", secrets.token_urlsafe(12)]):
        subprocess.run([PYTHON, "manage.py", *step], cwd=ROOT, env=setup_env, check=True, stdout=subprocess.DEVNULL)

    webhook_url = f"http://127.0.0.1:{app_port}/stripe/webhook/{webhook_uuid}/"
    emulator = stack.start("emulator", [
        PYTHON, "-m", "stripe_emulator", "--port", str(emulator_port), "--log-level", "WARNING",
        "--webhook", f"{webhook_url}={webhook_secret}", "--webhook-workers", str(args.webhook_workers),
        "--webhook-events", ",".join(STRIPE_EVENTS_USED)], env)
    web = stack.start("web", [
        str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{app_port}", "--workers", str(args.web_workers),
        "--threads", str(args.web_threads), "--graceful-timeout", "5"], env)
    worker = stack.start("worker", [PYTHON, "manage.py", "qcluster"], worker_env)
    wait_for_http(f"http://127.0.0.1:{app_port}/healthz")
    wait_for_http(f"http://127.0.0.1:{emulator_port}/_emulator/state")
    postmaster = int(Path(db.one("SHOW data_directory")[0], "postmaster.pid").read_text().split()[0]) \
        if os.access(db.one("SHOW data_directory")[0], os.R_OK) else None
    roots = {"web": web.pid, "worker": worker.pid, "emulator": emulator.pid}
    if postmaster:
        roots["postgres"] = postmaster
    else:
        say("cannot read the PostgreSQL data directory: no PostgreSQL CPU figures")
    probe = Probe(db, f"http://127.0.0.1:{emulator_port}", has_pss)
    say(f"stack up: app http://127.0.0.1:{app_port}, emulator http://127.0.0.1:{emulator_port}, "
        f"{args.web_workers}x{args.web_threads} gunicorn, {args.q_workers} task workers, "
        f"{args.webhook_workers} webhook deliveries in flight, SQL counted by "
        f"{'pg_stat_statements' if has_pss else 'pg_stat_database transactions'}")

    results = []
    for users in levels:
        result = run_level(users, args, probe, roots, out, f"http://127.0.0.1:{app_port}")
        results.append(result)
        print_level(result)
        (out / "summary.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                      "cpus": os.cpu_count(), "levels": results}, indent=2))
    print()
    print_table(results)
    say(f"details in {out}")
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
