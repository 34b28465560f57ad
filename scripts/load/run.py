"""`make load`: the real stack on a throwaway PostgreSQL, customers from locust, one table per level.

    scripts/with-postgres.sh .venv/bin/python scripts/load/run.py [--levels 1,10,25] [--duration 30] ...

(Run without DATABASE_URL, it re-runs itself under scripts/with-postgres.sh.) It turns on
pg_stat_statements (restarting that throwaway server once), migrates, seeds the plan, the schedules
and the webhook endpoint (manage.py demo_setup), then starts the Stripe emulator (delivering
webhooks to the app from --webhook-workers threads), gunicorn and qcluster, each connecting to
PostgreSQL as its own role so statements can be counted per process. For each level it runs locust
headless (scripts/load/locustfile.py: full purchases as a browser makes them), samples the webhook
backlog and the task queue, waits for both to drain, and prints: purchases/s, purchase time
p50/p95/p99, errors, CPU-seconds per purchase by process (and all-in, the emulator included), SQL
statements per purchase (every statement in statements-<level>.tsv), Stripe API requests per
purchase by endpoint (server-side and the browser's apart, as the emulator counted them), the
backlog and drain time, the confirmation-email delay, and the invariants after the drain.
--py-spy profiles web and worker during each level; --idle-seconds measures the idle stack first.

Everything it starts is stopped on exit, Ctrl-C included. Output (logs, locust CSVs, per-purchase
JSON lines, the summary as JSON) goes to var/load/<timestamp>/.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import (  # scripts/load/stack.py: the stack, shared with chaos.py
    BIN,
    ROLES,
    ROOT,
    _proc_table,
    die_with_parent,
    get_json,
    harness_main,
    invariants,
    machine_busy_seconds,
    percentile,
    start_backstop,
    tree_cpu_seconds,
    wait_for_drain,
    wait_for_mirror,
)


def say(message):
    print(f"[load] {message}", flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--levels", default="1,10,25", help="concurrent customers per level, comma-separated")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per level")
    parser.add_argument("--think-time", type=float, default=0.0, help="seconds between a customer's purchases")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--q-workers", type=int, default=4, help="django-q2 worker processes (Q_WORKERS)")
    parser.add_argument("--webhook-workers", type=int, default=16, help="emulator webhook deliveries in flight")
    parser.add_argument("--idle-seconds", type=float, default=0,
                        help="before each level, measure the stack idle this long: its CPU per second (task polling, "
                             "heartbeats) is then also reported per purchase apart from the work of the purchases")
    parser.add_argument("--drain-timeout", type=int, default=300, help="seconds to wait for backlogs to drain")
    parser.add_argument("--top-statements", type=int, default=8, help="slowest SQL statements to list per level")
    parser.add_argument("--py-spy", action="store_true",
                        help="profile web and worker with py-spy during each level (collapsed stacks in the output)")
    parser.add_argument("--out", type=Path, help="output directory (default var/load/<timestamp>)")
    parser.add_argument("--stripe-rate-limits", choices=["live", "test"],
                        help="the emulator enforces Stripe's documented rate limits of that mode (live 100 "
                        "requests/s, test 25/s, 25/s per endpoint); each level then reports the 429s it answered")
    return parser.parse_args()


# -- measuring one level ------------------------------------------------------------------------


def run_level(users, args, probe, roots, out, host):
    db = probe.db
    first_order_id = db.one("SELECT coalesce(max(id), 0) FROM billing_order")[0]
    results_file = out / f"purchases-{users}.jsonl"
    probe.reset_statements()
    sql_before = probe.sql_counters()
    stripe_before = probe.stripe_requests()
    idle_per_s = _idle_cpu_per_second(roots, args.idle_seconds) if args.idle_seconds else {}
    cpu_before, busy_before = tree_cpu_seconds(roots), machine_busy_seconds()
    env = dict(os.environ, LOAD_RESULTS_FILE=str(results_file), LOAD_THINK_TIME=str(args.think_time))
    say(f"level {users}: {users} customers for {args.duration} s")
    started, wall_started = time.monotonic(), time.time()
    profilers = _start_profilers(roots, out, users, args.duration) if args.py_spy else []
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
    for profiler in profilers:
        profiler.wait()
    hooks_at_end, tasks_at_end = probe.backlog()
    drained, drain_seconds = wait_for_drain(probe, first_order_id, args.drain_timeout)
    # Counted in the purchase's cost: the mirror work the sweep does for it, up to a minute later.
    mirrored, mirror_seconds = wait_for_mirror(probe, first_order_id, args.drain_timeout)
    cpu_after = tree_cpu_seconds({k: v for k, v in roots.items() if k != "locust"})
    busy = machine_busy_seconds() - busy_before
    window = time.monotonic() - started
    sql_after = probe.sql_counters()
    stripe_after = probe.stripe_requests()
    statements = probe.statements()
    top = probe.top_statements(limit=args.top_statements, rows=statements)

    purchases = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()] \
        if results_file.exists() else []
    ok = [p for p in purchases if p["ok"]]
    errors = [p for p in purchases if not p["ok"]]
    # Throughput over the load window only: purchases that finished within --duration of the start.
    in_window = [p for p in ok if p["started"] + p["seconds"] <= wall_started + args.duration]
    paid = db.one("SELECT count(*) FROM billing_order WHERE id > %s AND paid_at IS NOT NULL", (first_order_id,))[0]
    per = max(paid, 1)
    # Every statement, per paid order, most frequent first: where a purchase's SQL goes.
    with open(out / f"statements-{users}.tsv", "w") as f:
        f.write("role\tcalls per purchase\tmean ms\ttotal ms\tquery\n")
        for role, total_ms, calls, query in sorted(statements, key=lambda r: -r[2]):
            f.write(f"{role}\t{calls / per:.2f}\t{total_ms / max(calls, 1):.3f}\t{total_ms:.1f}\t{query}\n")
    cpu = {name: (cpu_after.get(name, 0) - cpu_before.get(name, 0)) / per
           for name in ("web", "worker", "postgres", "emulator")}
    sql = {role: ((sql_after.get(role, (0, 0))[0] - sql_before.get(role, (0, 0))[0]) / per,
                  (sql_after.get(role, (0, 0))[1] - sql_before.get(role, (0, 0))[1]) / per) for role in sql_after}
    # Stripe calls per paid order, as Stripe's rate limits count them: server-side (secret key) and
    # the customer's browser (Stripe.js, publishable key) apart.
    stripe_calls = {k: (n - stripe_before.get(k, 0)) / per for k, n in stripe_after.items()
                    if n > stripe_before.get(k, 0)}
    delays = [float(r[0]) for r in db.all("""
        SELECT extract(epoch FROM e.sent_at - o.paid_at) FROM outbox_outboundemail e
        JOIN billing_order o ON o.id = e.about_id
             AND e.about_type_id = (SELECT id FROM django_content_type WHERE app_label = 'billing' AND model = 'order')
        WHERE o.id > %s AND e.kind = 'confirmation' AND e.sent_at IS NOT NULL""", (first_order_id,))]
    invariants_after = invariants(db, first_order_id)
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
        # Issue 21's all-in figure: the emulator stands for Stripe's side of the calls we make.
        "all_in_cpu_ms_per_purchase": round(1000 * sum(cpu.values()), 1),
        # What the stack burns with nobody buying (django-q2's polling and heartbeats, the harness's own
        # monitoring query), over the level's window, per purchase: it shrinks as throughput grows, so
        # levels of different throughput compare better on the rest.
        "idle_cpu_per_s": {k: round(v, 4) for k, v in idle_per_s.items()},
        "idle_cpu_ms_per_purchase": round(1000 * sum(idle_per_s.values()) * window / per, 1) if idle_per_s else None,
        "locust_cpu_s": round(cpu_locust, 1),
        # Everything the machine did in the level (load + drain), to see what the tree accounting
        # missed and whether something else on the machine was competing with the run.
        "machine_busy_cores": round(busy / window, 2),
        "machine_other_cpu_s": round(busy - cpu_locust - sum(cpu.values()) * per, 1),
        "window_seconds": round(window, 1),
        "sql_per_purchase": {k: {"all": round(v[0], 1), "without_tx_control": round(v[1], 1)} for k, v in sql.items()},
        "sql_per_purchase_total": round(sum(v[0] for v in sql.values()), 1),
        "top_statements": top,
        "stripe_calls_per_purchase": {
            "server": round(sum(v for k, v in stripe_calls.items() if k[0] == "secret"), 2),
            "browser": round(sum(v for k, v in stripe_calls.items() if k[0] == "publishable"), 2),
            "by_endpoint": {f"{k[0]} {k[1]} {k[2]}": round(v, 2) for k, v in sorted(stripe_calls.items())},
        },
        "backlog_max": {"webhooks": max_hooks, "tasks": max_tasks},
        "backlog_at_load_end": {"webhooks": hooks_at_end, "tasks": tasks_at_end},
        "drain_seconds": round(drain_seconds, 1),
        "drained": drained,
        # Paid orders per second over the load and the drain: what the stack keeps up with.
        "sustained_per_s": round(paid / (load_seconds + drain_seconds), 2),
        "mirror_wait_seconds": round(mirror_seconds, 1),
        "mirrored": mirrored,
        "email_delay_seconds": {"p50": _r(percentile(delays, 50)), "p95": _r(percentile(delays, 95)),
                                "max": _r(max(delays, default=None)),
                                "count": len(delays)},
        "invariants": invariants_after,
    }


def _stripe_429s(emulator):
    """The 429s the emulator's rate limiter has answered so far, by endpoint."""
    return {r["endpoint"]: r["count"] for r in get_json(f"{emulator}/_emulator/rate_limits")["refused"]}


def _idle_cpu_per_second(roots, seconds):
    say(f"measuring the idle stack for {seconds} s")
    before = tree_cpu_seconds(roots)
    time.sleep(seconds)
    after = tree_cpu_seconds(roots)
    return {name: (after[name] - before[name]) / seconds for name in ("web", "worker", "postgres", "emulator")}


def _start_profilers(roots, out, users, duration):
    """py-spy on the web server and the task worker (their process trees) for the load window, each
    writing collapsed stacks (one line per stack with its sample count; flamegraph.pl reads them).

    Only the thread holding the GIL is sampled (--gil): without stopping the process (--nonblocking)
    py-spy cannot tell an idle thread from a busy one: at 10 customers three samples of four were
    threads waiting on a socket or on PostgreSQL's answer. A holder the machine has preempted is still sampled,
    so on a busy machine the shares are of time holding the GIL, close to but not exactly CPU."""
    profilers = []
    for name in ("web", "worker"):
        profilers.append(subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(roots[name]), "--subprocesses", "--nonblocking", "--gil",
             "--rate", "50", "--duration", str(duration), "--format", "raw",
             "--output", str(out / f"py-spy-{name}-{users}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent))
    return profilers


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
        f"= {r['backstop_cpu_s_per_purchase']} Backstop; emulator {c['emulator']} (locust used {r['locust_cpu_s']} s); "
        f"all-in {r['all_in_cpu_ms_per_purchase']} ms"
        + (f", of which {r['idle_cpu_ms_per_purchase']} ms the idle stack's ({r['idle_cpu_per_s']} CPU-s/s)"
           if r["idle_cpu_ms_per_purchase"] is not None else ""))
    say(f"  machine: {r['machine_busy_cores']} of {os.cpu_count()} cores busy over {r['window_seconds']} s; "
        f"{r['machine_other_cpu_s']} CPU-s not from this stack or locust (other work on the machine, if large)")
    say(f"  SQL per paid order: {r['sql_per_purchase_total']} = " + ", ".join(
        f"{k} {v['all']} ({v['without_tx_control']} without BEGIN/COMMIT)" for k, v in r["sql_per_purchase"].items()))
    for t in r["top_statements"]:
        say(f"    {t['share']}% of statement time, {t['calls']} calls, {t['mean_ms']} ms each: {t['query']}")
    k = r["stripe_calls_per_purchase"]
    say(f"  Stripe calls per paid order: {k['server']} server-side, {k['browser']} from the browser")
    for endpoint, count in k["by_endpoint"].items():
        say(f"    {count} {endpoint}")
    say(f"  backlog max: {r['backlog_max']['webhooks']} webhooks, {r['backlog_max']['tasks']} tasks; at load end "
        f"{r['backlog_at_load_end']['webhooks']} / {r['backlog_at_load_end']['tasks']}; drained in "
        f"{r['drain_seconds']} s{'' if r['drained'] else ' (NOT drained: timeout)'}; sustained "
        f"{r['sustained_per_s']} paid orders/s over load + drain")
    say(f"  mirror: every paid order's charge in dj-stripe's mirror {r['mirror_wait_seconds']} s after the drain"
        f"{'' if r['mirrored'] else ' (NOT caught up: timeout)'} (the sweep's pull sync, counted in the CPU above)")
    e = r["email_delay_seconds"]
    say(f"  confirmation email after payment: p50 {e['p50']} s, p95 {e['p95']} s ({e['count']} sent)")
    say("  invariants: " + ", ".join(f"{k} {v}" for k, v in r["invariants"].items()))


def print_table(results):
    head = ("| customers | purchases/s in the window | sustained/s | p50 / p95 / p99 s | errors "
            "| CPU-s/purchase web + worker + pg = total | SQL/purchase web + worker | webhook backlog max, drain s "
            "| Stripe calls/purchase server | email delay p50 / p95 s | invariants |")
    print(head)
    print("|" + " --- |" * 11)
    for r in results:
        s, c, e, inv = r["purchase_seconds"], r["cpu_s_per_purchase"], r["email_delay_seconds"], r["invariants"]
        q = r["sql_per_purchase"]
        sql = " + ".join(str(q[k]["all"]) for k in (*ROLES.values(), "all") if k in q)
        bad = sum(v for k, v in inv.items() if k not in ("orders", "active"))
        print(f"| {r['users']} | {r['purchases_per_s']} | {r['sustained_per_s']} | "
              f"{s['p50']} / {s['p95']} / {s['p99']} | "
              f"{r['purchases_failed']} | {c['web']} + {c['worker']} + {c['postgres']} = "
              f"{r['backstop_cpu_s_per_purchase']} | {sql} | {r['backlog_max']['webhooks']}, {r['drain_seconds']} | "
              f"{r['stripe_calls_per_purchase']['server']} | {e['p50']} / {e['p95']} | {'ok' if bad == 0 else inv} |")


def main():
    args = parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    return harness_main("load", args.out, lambda url, out, stack: _run(args, levels, url, out, stack), say)


def _run(args, levels, url, out, stack):
    backstop = start_backstop(stack, url, web_workers=args.web_workers, web_threads=args.web_threads,
                              q_workers=args.q_workers, webhook_workers=args.webhook_workers, say=say,
                              emulator_args=["--rate-limits", args.stripe_rate_limits] if args.stripe_rate_limits
                              else [])
    db, probe, roots = backstop.db, backstop.probe, backstop.roots
    say(f"stack up: app {backstop.app}, emulator {backstop.emulator}, "
        f"{args.web_workers}x{args.web_threads} gunicorn, {args.q_workers} task workers, "
        f"{args.webhook_workers} webhook deliveries in flight, SQL counted by "
        f"{'pg_stat_statements' if backstop.has_pss else 'pg_stat_database transactions'}")

    if args.stripe_rate_limits:
        limits = get_json(f"{backstop.emulator}/_emulator/rate_limits")
        say(f"the emulator enforces Stripe's {limits['mode']}-mode rate limits: {limits['overall']} requests/s "
            f"overall, {limits['per_endpoint']}/s per endpoint (secret-key requests)")

    results = []
    for users in levels:
        refused_before = _stripe_429s(backstop.emulator)
        result = run_level(users, args, probe, roots, out, backstop.app)
        if args.stripe_rate_limits:
            result["stripe_rate_limits"] = args.stripe_rate_limits
            result["stripe_429s"] = {k: n - refused_before.get(k, 0) for k, n in _stripe_429s(backstop.emulator).items()
                                     if n > refused_before.get(k, 0)}
        results.append(result)
        print_level(result)
        if args.stripe_rate_limits:
            say(f"  Stripe's {args.stripe_rate_limits}-mode rate limits: {sum(result['stripe_429s'].values())} "
                f"requests answered 429 ({result['stripe_429s'] or 'none'})")
        (out / "summary.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                      "cpus": os.cpu_count(), "levels": results}, indent=2))
    print()
    print_table(results)
    say(f"details in {out}")
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
