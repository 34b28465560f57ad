"""`make chaos`: customers buying while processes die and Stripe misbehaves; what converged, and how.

    make chaos [CHAOS_ARGS="--customers 50 --duration 150 --seed 1"]
    scripts/with-postgres.sh .venv/bin/python scripts/load/chaos.py --help

(Run without DATABASE_URL, it re-runs itself under scripts/with-postgres.sh.) It starts the same
stack as `make load` (scripts/load/stack.py: a throwaway PostgreSQL, the Stripe emulator with its
webhooks, gunicorn, qcluster), then runs locust customers (scripts/load/chaos_locustfile.py: full
purchases as a browser makes them, reloading after errors) with, at times drawn from --seed:

- a share of customers (--leave-rate) closing the tab once they have paid, before the return page,
  so that the webhook and the sweep have orders only they can finish;
- SIGKILL of a random gunicorn worker every --worker-kill-every seconds (the master respawns it);
- once, SIGKILL of the whole gunicorn (master and workers), started again --down-seconds later;
- once, SIGKILL of the whole qcluster process tree, started again --down-seconds later;
- Stripe request faults through the emulator's /_emulator/faults: 429s, 500s, lost responses
  (processed, then the connection reset or a 500 instead of the answer) and 35 s timeouts (the
  app's client gives up after 20 s and retries twice), on the calls the app and Stripe.js make;
- webhook faults: deliveries dropped (never retried, like an event Stripe never sent),
  duplicated, delayed and shuffled.

After --duration it stops injecting, lets the customers finish what they started, waits for the
webhook backlog, the task queue and the outbox to drain, runs `manage.py reconcile` (the sweep) as
cron would, again while something is still open, and reports: the invariants (charged twice,
emailed twice, entitlements, paid but not active, money with no order), which net made each paid
order active (the customer's page, the webhook, the sweep, support), the orders left for a
human and why, payment-to-active times, the faults injected, the errors customers saw, and the
false words: pages that told a customer they had not been charged after Stripe had taken the money.

Output in var/chaos/<timestamp>/: report.json, faults.jsonl (every fault with its time),
observations.jsonl (every answer a customer got), purchases.jsonl, sweep-*.log and the logs of
every process. Everything started is stopped on exit, Ctrl-C included. Exit status 1 when an
invariant broke, a paid order did not converge, or a false word was seen.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import (  # scripts/load/stack.py: the stack, shared with run.py
    BIN,
    EMULATOR_SECRET_KEY,
    ROOT,
    _proc_table,
    die_with_parent,
    get_json,
    harness_main,
    invariants,
    percentile,
    start_backstop,
    start_pgbouncer,
    wait_for_drain,
)

# The request faults, and the calls each may hit (method, path as the emulator matches it: a
# pattern with */[ is matched whole, so "/v1/payment_intent[s]" is the create call only).
APP_CALLS = [("POST", "/v1/customer[s]"), ("POST", "/v1/payment_intent[s]"),
             ("GET", "/v1/payment_intents/pi_*"),  # the app's retrieve (settle, pay page) and Stripe.js's
             ("GET", "/v1/charges/*")]  # the pull sync refreshing a refunded or disputed charge
CONFIRM = ("POST", "/v1/payment_intents/pi_*/confirm")  # Stripe.js confirming the payment
STRIPE_FAULTS = {
    "stripe 429": ([*APP_CALLS, CONFIRM], lambda rng: {"kind": "fail", "status": "429", "count": rng.randint(1, 4)}),
    "stripe 500": ([*APP_CALLS, CONFIRM], lambda rng: {"kind": "fail", "status": "500", "count": rng.randint(1, 4)}),
    "stripe lost response (reset)": ([CONFIRM, CONFIRM, ("POST", "/v1/payment_intent[s]"), ("POST", "/v1/customer[s]")],
                                     lambda rng: {"kind": "lose_response", "mode": "reset",
                                                  "count": rng.randint(1, 3)}),
    "stripe lost response (500)": ([CONFIRM, CONFIRM, ("POST", "/v1/payment_intent[s]"), ("POST", "/v1/customer[s]")],
                                   lambda rng: {"kind": "lose_response", "mode": "500", "count": rng.randint(1, 3)}),
    "stripe timeout 35 s": ([("GET", "/v1/payment_intents/pi_*"), ("POST", "/v1/payment_intent[s]")],
                            lambda rng: {"kind": "fail", "status": "timeout", "seconds": 35,
                                         "count": rng.randint(1, 3)}),
}
WEBHOOK_FAULTS = {
    "webhook drop": lambda rng: ("drop", {"count": rng.randint(2, 12)}),
    "webhook duplicate": lambda rng: ("duplicate", {"count": rng.randint(2, 6)}),
    "webhook delay": lambda rng: ("delay", {"count": rng.randint(2, 6), "seconds": rng.randint(10, 45)}),
    "webhook shuffle": lambda rng: ("reorder", {"count": rng.randint(4, 10), "mode": "shuffle"}),
}
NOT_ACTIVE_OK = {"refunded", "refund_pending"}  # paid, then refunded on purpose: not a failure to converge


def say(message):
    print(f"[chaos] {message}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                     epilog="Details: docs/chaos.md. Example: make chaos CHAOS_ARGS='--seed 7'")
    parser.add_argument("--customers", type=int, default=50, help="concurrent customers")
    parser.add_argument("--duration", type=int, default=150, help="seconds of load with faults")
    parser.add_argument("--seed", type=int, default=1, help="seed for the fault times and choices")
    parser.add_argument("--worker-kill-every", type=float, default=5.0,
                        help="seconds between SIGKILLs of a random gunicorn worker (0: none)")
    parser.add_argument("--stripe-fault-every", type=float, default=4.0,
                        help="mean seconds between Stripe request faults (0: none)")
    parser.add_argument("--webhook-fault-every", type=float, default=6.0,
                        help="mean seconds between webhook faults (0: none)")
    parser.add_argument("--master-kill-at", type=float, default=0.4,
                        help="when to kill the whole gunicorn, as a fraction of --duration (negative: never)")
    parser.add_argument("--qcluster-kill-at", type=float, default=0.65,
                        help="when to kill the whole qcluster tree, as a fraction of --duration (negative: never)")
    parser.add_argument("--down-seconds", type=float, default=5.0, help="how long a killed server stays down")
    parser.add_argument("--leave-rate", type=float, default=0.1,
                        help="share of customers who close the tab once they have paid, before the return page "
                             "(their orders are left to the webhook and the sweep)")
    parser.add_argument("--finish-timeout", type=int, default=200,
                        help="seconds customers get after --duration to finish the purchase they started")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--q-workers", type=int, default=4, help="django-q2 worker processes (Q_WORKERS)")
    parser.add_argument("--webhook-workers", type=int, default=16, help="emulator webhook deliveries in flight")
    parser.add_argument("--drain-timeout", type=int, default=300, help="seconds to wait for backlogs to drain")
    parser.add_argument("--sweeps", type=int, default=3, help="most `manage.py reconcile` runs after the drain")
    parser.add_argument("--hosts", type=int, default=1,
                        help="web hosts, each with its own gunicorn, qcluster and cron sweep, on one PostgreSQL")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="app processes reach PostgreSQL through PgBouncer in transaction mode")
    parser.add_argument("--cron-every", type=int, default=20, help="seconds between each host's cron sweeps")
    parser.add_argument("--out", type=Path, help="output directory (default var/chaos/<timestamp>)")
    return parser.parse_args(argv)


# -- the fault plan (pure: the same seed gives the same plan) ---------------------------------------


def plan_faults(*, duration, seed, worker_kill_every=5.0, stripe_fault_every=4.0, webhook_fault_every=6.0,
                master_kill_at=0.4, qcluster_kill_at=0.65, down_seconds=5.0):
    """The faults to inject, as [{"at": seconds from the start, "fault": name, ...}] sorted by time."""
    rng = random.Random(seed)
    plan = []

    def every(mean, jitter):
        t = mean * rng.uniform(0.5, 1.0)
        while t < duration:
            yield t
            t += mean * rng.uniform(1 - jitter, 1 + jitter)

    if worker_kill_every > 0:
        plan += [{"at": t, "fault": "gunicorn worker SIGKILL"} for t in every(worker_kill_every, 0.2)]
    if stripe_fault_every > 0:
        for t in every(stripe_fault_every, 0.5):
            name = rng.choice(sorted(STRIPE_FAULTS))
            calls, spec = STRIPE_FAULTS[name]
            method, path = rng.choice(calls)
            plan.append({"at": t, "fault": name, "spec": {**spec(rng), "method": method, "path": path}})
    if webhook_fault_every > 0:
        for t in every(webhook_fault_every, 0.5):
            name = rng.choice(sorted(WEBHOOK_FAULTS))
            action, body = WEBHOOK_FAULTS[name](rng)
            plan.append({"at": t, "fault": name, "action": action, "body": body})
    for fraction, name, process in ((master_kill_at, "gunicorn master SIGKILL (whole gunicorn)", "web"),
                                    (qcluster_kill_at, "qcluster tree SIGKILL", "worker")):
        if fraction >= 0:
            at = duration * fraction
            plan.append({"at": at, "fault": name, "process": process})
            plan.append({"at": at + down_seconds, "fault": f"restart {process}", "process": process})
    return sorted(plan, key=lambda f: f["at"])


# -- talking to the emulator --------------------------------------------------------------------


def emulator_call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {EMULATOR_SECRET_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def stripe_list(base, path, **params):
    """Every object of a Stripe list endpoint, as the account owner sees it."""
    rows, after = [], None
    while True:
        query = {"limit": 100, **params, **({"starting_after": after} if after else {})}
        request = urllib.request.Request(f"{base}{path}?{urlencode(query)}",
                                         headers={"Authorization": f"Bearer {EMULATOR_SECRET_KEY}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            page = json.loads(response.read())
        rows += page["data"]
        if not page.get("has_more") or not page["data"]:
            return rows
        after = page["data"][-1]["id"]


class Injector:
    """Carries out the plan against the running stack, logging each fault as a JSON line."""

    def __init__(self, backstop, log_path, rng):
        self.backstop, self.rng = backstop, rng
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115 (closed in close)
        self.down = set()  # processes killed and not yet restarted
        self.web_hosts = [name for name, _process, _log in backstop.stack.children
                          if name == "web" or name.startswith("web-")]
        self.stripe_fault_ids = {}  # emulator fault id -> (name, count)

    def close(self):
        self.log.close()

    def record(self, fault, **details):
        row = {"t": round(time.time(), 3), "fault": fault, **details}
        self.log.write(json.dumps(row) + "\n")
        return row

    def inject(self, item, elapsed):
        fault, stack, emulator = item["fault"], self.backstop.stack, self.backstop.emulator
        try:
            if fault == "gunicorn worker SIGKILL":
                hosts = [n for n in self.web_hosts if n not in self.down]
                if not hosts:
                    return self.record(fault, at=elapsed, skipped="gunicorn is down")
                host = self.rng.choice(hosts)
                master = stack.process(host).pid
                workers = sorted(pid for pid, (ppid, _cpu) in _proc_table().items() if ppid == master)
                if not workers:
                    return self.record(fault, at=elapsed, skipped="no worker running")
                pid = self.rng.choice(workers)
                os.kill(pid, signal.SIGKILL)
                return self.record(fault, at=elapsed, pid=pid, host=host)
            if "process" in item and fault.startswith("restart"):
                process = stack.restart(item["process"])
                self.down.discard(item["process"])
                return self.record(fault, at=elapsed, pid=process.pid)
            if "process" in item:
                pid = stack.kill(item["process"])
                self.down.add(item["process"])
                return self.record(fault, at=elapsed, pid=pid)
            if "spec" in item:
                answer = emulator_call(emulator, "POST", "/_emulator/faults", item["spec"])
                self.stripe_fault_ids[answer["fault"]["id"]] = (fault, item["spec"]["count"])
                return self.record(fault, at=elapsed, id=answer["fault"]["id"], **item["spec"])
            emulator_call(emulator, "POST", f"/_emulator/webhooks/{item['action']}", item["body"])
            return self.record(fault, at=elapsed, **item["body"])
        except (OSError, urllib.error.URLError, ValueError, StopIteration) as exc:
            return self.record(fault, at=elapsed, skipped=f"{type(exc).__name__}: {exc}")

    def stop_faults(self):
        """No more faults: unused request faults cleared (and counted), held webhooks released."""
        left = emulator_call(self.backstop.emulator, "GET", "/_emulator/faults")["faults"]
        unused = Counter()
        for fault in left:
            name, _count = self.stripe_fault_ids.get(fault["id"], (fault["kind"], 0))
            unused[name] += fault["count"]
        emulator_call(self.backstop.emulator, "DELETE", "/_emulator/faults")
        emulator_call(self.backstop.emulator, "POST", "/_emulator/webhooks/flush", {})
        emulator_call(self.backstop.emulator, "POST", "/_emulator/webhooks/resume", {})
        self.record("faults cleared", unused_request_faults=dict(unused))
        return dict(unused)

    def restart_all_down(self):
        for process in sorted(self.down):
            self.backstop.stack.restart(process)
            self.record(f"restart {process}", reason="end of fault window")
        self.down.clear()


# -- the report (pure functions over what was collected) ------------------------------------------


def stripe_payments(payment_intents, charges, events):
    """Per Backstop order reference, the PaymentIntents that succeeded in Stripe, each with the
    second it did (from its payment_intent.succeeded event) and its succeeded charges."""
    succeeded_at = {e["data"]["object"]["id"]: e["created"] for e in events
                    if e["type"] == "payment_intent.succeeded"}
    charges_by_pi = Counter(c["payment_intent"] for c in charges if c["status"] == "succeeded" and c.get("paid"))
    by_reference = {}
    for pi in payment_intents:
        reference = (pi.get("metadata") or {}).get("reference")
        if not reference or pi["status"] != "succeeded":
            continue
        by_reference.setdefault(reference, []).append({
            "id": pi["id"], "created": succeeded_at.get(pi["id"], pi["created"]),
            "charges": charges_by_pi.get(pi["id"], 0)})
    return by_reference


def paid_moments(payments, observations):
    """PaymentIntent id -> (earliest, latest) wall time it can have succeeded: the second of its
    event, narrowed by what the customer's browser did: it cannot have succeeded before the first
    confirm was sent, and had by the time a confirm answer said so."""
    told, sent = {}, {}
    for o in observations:
        if o.get("step") != "Stripe.js POST confirm" or not o.get("pi"):
            continue
        sent[o["pi"]] = min(sent.get(o["pi"], o["t"]), o["t"])
        if o.get("pi_status") == "succeeded":
            told[o["pi"]] = min(told.get(o["pi"], o["t_end"]), o["t_end"])
    moments = {}
    for pis in payments.values():
        for pi in pis:
            earliest, latest = pi["created"], pi["created"] + 1
            if pi["id"] in told:
                latest = min(latest, told[pi["id"]])
            if pi["id"] in sent:
                earliest = max(earliest, sent[pi["id"]])
            moments[pi["id"]] = (min(earliest, latest), latest)
    return moments


def false_words(observations, payments, moments):
    """Pages that told a customer they had not been charged (or offered the card form again)
    while Stripe had their money: `definite` when the request was sent after the payment had
    succeeded, `possible` when the page was being made in the very second it did."""
    definite, possible = [], []
    for o in observations:
        if not o.get("says_not_charged") or not o.get("ref"):
            continue
        for pi in payments.get(o["ref"], []):
            earliest, latest = moments[pi["id"]]
            row = {"ref": o["ref"], "payment_intent": pi["id"], "page": o["page"], "code": o["code"],
                   "step": o["step"], "at": o["t"], "seconds_after_payment": round(o["t"] - latest, 2)}
            if o["t"] >= latest:
                definite.append(row)
            elif o["t_end"] > earliest:
                possible.append(row)
            else:
                continue
            break
    return definite, possible


def customer_errors(observations):
    """What customers saw go wrong: the shop's errors by kind and step, and Stripe.js's."""
    shop, stripe_js = Counter(), Counter()
    for o in observations:
        if o["http"] == 0:
            kind = f"connection error ({o.get('error', '?')})"
        elif o["http"] >= 500:
            kind = "503 pay page 'briefly unavailable'" if o.get("page") == "pay unavailable" else f"HTTP {o['http']}"
        else:
            continue
        (shop if o["target"] == "shop" else stripe_js)[f"{kind}: {o['step']}"] += 1
    return dict(shop.most_common()), dict(stripe_js.most_common())


def convergence(orders, events, moments, payments, final_sweep_at):
    """Which net made each paid order active, how long it took, and what is left for a person.

    orders: [{id, reference, state, paid_at, pi, attention_reason, held_since}];
    events: [{order_id, at, actor, to_state, reason}] in time order; times are epoch seconds."""
    by_order = {}
    for e in events:
        by_order.setdefault(e["order_id"], []).append(e)

    def net(event):
        actor = event["actor"]
        if actor == "sweep" and event["at"] >= final_sweep_at:
            return "sweep (manage.py reconcile after the run)"
        if actor == "sweep":
            return "sweep (scheduled, every minute)"
        if actor == "customer":
            return "customer's status page"
        return "support" if actor.startswith("support") else actor

    made_active, made_paid, lags, lag_by_net = Counter(), Counter(), [], {}
    needed_sweep, left_for_human, not_converged, paid_orders = [], [], [], 0
    for order in orders:
        history = by_order.get(order["id"], [])
        charged = payments.get(order["reference"], [])
        if order["paid_at"] is None and not charged:
            continue
        paid_orders += 1
        paid_event = next((e for e in history if e["to_state"] in ("paid", "active")), None)
        active_event = next((e for e in history if e["to_state"] == "active"), None)
        if paid_event:
            made_paid[net(paid_event)] += 1
        if any(e["actor"] == "sweep" and e["to_state"] for e in history):
            needed_sweep.append(order["reference"])
        if order["state"] in ("needs_review",) or (order["held_since"] and order["state"] != "active"):
            left_for_human.append({"ref": order["reference"], "state": order["state"],
                                   "reason": order["attention_reason"], "held": order["held_since"] is not None})
        if active_event and order["state"] == "active":
            made_active[net(active_event)] += 1
            pis = [moments[p["id"]][1] for p in charged if p["id"] in moments]
            if pis:
                lag = active_event["at"] - min(pis)
                lags.append(lag)
                lag_by_net.setdefault(net(active_event), []).append(lag)
        elif order["state"] not in NOT_ACTIVE_OK:
            not_converged.append({"ref": order["reference"], "state": order["state"],
                                  "charged_in_stripe": bool(charged), "paid_at_set": order["paid_at"] is not None,
                                  "reason": order["attention_reason"],
                                  "history": [f"{e['actor']}: {e['to_state'] or '-'} {e['reason'][:120]}"
                                              for e in history]})

    def stats(values):
        return {"count": len(values), "p50": _r(percentile(values, 50)), "p95": _r(percentile(values, 95)),
                "max": _r(max(values) if values else None)}

    return {
        "paid_orders": paid_orders,
        "made_active_by": dict(made_active.most_common()),
        "payment_noticed_by": dict(made_paid.most_common()),
        "payment_to_active_seconds": stats(lags),
        "payment_to_active_seconds_by_net": {k: stats(v) for k, v in sorted(lag_by_net.items())},
        "needed_the_sweep": needed_sweep,
        "left_for_a_human": left_for_human,
        "not_converged": not_converged,
    }


def money_invariants(orders, payments, confirmations, entitlements):
    """The money facts, from Stripe's side (the emulator) joined to the orders."""
    refs = {o["reference"]: o for o in orders}
    return {
        "charged_twice_same_payment": sorted(pi["id"] for pis in payments.values() for pi in pis if pi["charges"] > 1),
        "charged_twice_same_order": sorted(ref for ref, pis in payments.items() if len(pis) > 1),
        "emailed_twice": sorted(ref for ref, n in confirmations.items() if n > 1),
        "active_without_one_entitlement": sorted(o["reference"] for o in orders
                                                 if o["state"] == "active" and entitlements.get(o["reference"]) != 1),
        "active_without_confirmation": sorted(o["reference"] for o in orders
                                              if o["state"] == "active" and not confirmations.get(o["reference"])),
        "paid_not_active": sorted(o["reference"] for o in orders
                                  if o["paid_at"] and o["state"] != "active" and o["state"] not in NOT_ACTIVE_OK),
        "charged_no_order": sorted(ref for ref in payments if ref not in refs),
        "charged_order_not_paid": sorted(ref for ref in payments if ref in refs and refs[ref]["paid_at"] is None),
    }


def _r(value):
    return None if value is None else round(value, 2)


# -- running it ---------------------------------------------------------------------------------


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def open_cases(db, first_order_id, emulator):
    """Orders a sweep could still move: paid and not active, or charged in Stripe and not paid."""
    paid_not_active = db.one("""SELECT count(*) FROM billing_order WHERE id > %s AND paid_at IS NOT NULL
                                AND state NOT IN ('active', 'refunded', 'refund_pending', 'needs_review')""",
                             (first_order_id,))[0]
    charged = {(pi.get("metadata") or {}).get("reference") for pi in stripe_list(emulator, "/v1/payment_intents")
               if pi["status"] == "succeeded"} - {None}
    unpaid = {r for (r,) in db.all("SELECT reference FROM billing_order WHERE id > %s AND paid_at IS NULL",
                                   (first_order_id,))}
    missing = charged - {r for (r,) in db.all("SELECT reference FROM billing_order")}
    return paid_not_active + len(charged & unpaid) + len(missing)


def main():
    args = parse_args()
    return harness_main("chaos", args.out, lambda url, out, stack: _run(args, url, out, stack), say)


def _run(args, url, out, stack):
    started_at = datetime.now().astimezone()
    pooled_url = start_pgbouncer(stack, url, out, say) if args.pgbouncer else None
    backstop = start_backstop(stack, url, web_workers=args.web_workers, web_threads=args.web_threads,
                              q_workers=args.q_workers, webhook_workers=args.webhook_workers, say=say,
                              hosts=args.hosts, cron_every=args.cron_every, pooled_url=pooled_url)
    db, probe = backstop.db, backstop.probe
    say(f"stack up: app {backstop.app}, emulator {backstop.emulator}; output in {out}")
    first_order_id = db.one("SELECT coalesce(max(id), 0) FROM billing_order")[0]
    plan = plan_faults(duration=args.duration, seed=args.seed, worker_kill_every=args.worker_kill_every,
                       stripe_fault_every=args.stripe_fault_every, webhook_fault_every=args.webhook_fault_every,
                       master_kill_at=args.master_kill_at, qcluster_kill_at=args.qcluster_kill_at,
                       down_seconds=args.down_seconds)
    injector = Injector(backstop, out / "faults.jsonl", random.Random(args.seed + 1))
    observations_file, purchases_file = out / "observations.jsonl", out / "purchases.jsonl"
    env = dict(os.environ, LOAD_RESULTS_FILE=str(purchases_file), CHAOS_OBSERVATIONS_FILE=str(observations_file),
               LOAD_ACTIVE_TIMEOUT=str(min(150, args.finish_timeout - 20)), CHAOS_LEAVE_RATE=str(args.leave_rate),
               CHAOS_HOSTS=",".join(backstop.apps) if args.hosts > 1 else "")
    say(f"{args.customers} customers for {args.duration} s, {len(plan)} faults planned (seed {args.seed})")
    try:
        with open(out / "locust.log", "wb") as log:
            locust = subprocess.Popen(
                [str(BIN / "locust"), "-f", str(ROOT / "scripts/load/chaos_locustfile.py"), "--headless",
                 "-u", str(args.customers), "-r", str(args.customers), "--run-time", f"{args.duration}s",
                 "--stop-timeout", str(args.finish_timeout), "--host", backstop.app, "--csv", str(out / "locust"),
                 "--only-summary", "--loglevel", "WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent)
            stack.children.append(("locust", locust, open(os.devnull, "wb")))  # noqa: SIM115 (closed by stop_all)
            t0, pending, max_hooks, max_tasks, cleared = time.monotonic(), list(plan), 0, 0, False
            unused = {}
            while locust.poll() is None:
                elapsed = time.monotonic() - t0
                while pending and pending[0]["at"] <= elapsed:
                    row = injector.inject(pending.pop(0), elapsed)
                    if "skipped" in row or not row["fault"].startswith("gunicorn worker"):
                        say(f"{elapsed:6.1f} s  {row['fault']}" + (f" (skipped: {row['skipped']})"
                                                                   if "skipped" in row else ""))
                if not cleared and elapsed >= args.duration:
                    pending, cleared = [], True
                    injector.restart_all_down()  # anything killed near the end comes back now
                    unused = injector.stop_faults()
                    say(f"{elapsed:6.1f} s  no more faults; customers finish what they started")
                try:
                    hooks, tasks = probe.backlog()
                    max_hooks, max_tasks = max(max_hooks, hooks), max(max_tasks, tasks)
                except OSError:
                    pass
                time.sleep(0.25)
            if not cleared:
                injector.restart_all_down()
                unused = injector.stop_faults()
        load_seconds = time.monotonic() - t0
        say(f"customers done after {load_seconds:.0f} s; waiting for the drain")
        drained, drain_seconds = wait_for_drain(probe, first_order_id, args.drain_timeout)
        say(f"{'drained' if drained else 'NOT drained'} in {drain_seconds:.0f} s")

        # The sweep, as cron runs it, once Stripe's charges are older than its grace period (20 s).
        final_sweep_at, sweeps = time.time(), []
        time.sleep(max(0.0, 25 - drain_seconds))
        for n in range(1, args.sweeps + 1):
            with open(out / f"sweep-{n}.log", "wb") as log:
                result = backstop.manage("reconcile", "-v", "2", stdout=log, stderr=subprocess.STDOUT)
            wait_for_drain(probe, first_order_id, args.drain_timeout)
            still_open = open_cases(db, first_order_id, backstop.emulator)
            sweeps.append({"run": n, "exit": result.returncode, "open_after": still_open})
            say(f"sweep {n}: exit {result.returncode}, {still_open} order(s) still open")
            if still_open == 0:
                break
            time.sleep(30)
    finally:
        injector.close()

    report = collect_report(args, backstop, first_order_id, out, started_at=started_at, final_sweep_at=final_sweep_at,
                            load_seconds=load_seconds, drained=drained, drain_seconds=drain_seconds, sweeps=sweeps,
                            unused_faults=unused, backlog_max={"webhooks": max_hooks, "tasks": max_tasks})
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print_report(report)
    say(f"details in {out}")
    bad = (any(report["invariants"].values()) or report["convergence"]["not_converged"]
           or report["false_words"]["count"])
    db.close()
    return 1 if bad else 0


def collect_report(args, backstop, first_order_id, out, *, started_at, final_sweep_at, load_seconds, drained,
                   drain_seconds, sweeps, unused_faults, backlog_max):
    db, emulator = backstop.db, backstop.emulator
    orders = [dict(zip(("id", "reference", "state", "paid_at", "pi", "attention_reason", "held_since"), row,
                       strict=True))
              for row in db.all("""SELECT id, reference, state, extract(epoch FROM paid_at)::float,
                                          stripe_payment_intent_id, attention_reason, held_since
                                   FROM billing_order WHERE id > %s ORDER BY id""", (first_order_id,))]
    events = [dict(zip(("order_id", "at", "actor", "to_state", "reason"), row, strict=True))
              for row in db.all("""SELECT order_id, extract(epoch FROM created_at)::float, actor, to_state, reason
                                   FROM billing_orderevent WHERE order_id > %s ORDER BY created_at, id""",
                                (first_order_id,))]
    confirmations = dict(db.all("""SELECT o.reference, count(*) FROM outbox_outboundemail e
                                   JOIN billing_order o ON o.id = e.about_id
                                        AND e.about_type_id = (SELECT id FROM django_content_type
                                            WHERE app_label = 'billing' AND model = 'order')
                                   WHERE o.id > %s AND e.kind = 'confirmation' GROUP BY 1""", (first_order_id,)))
    entitlements = dict(db.all("""SELECT o.reference, count(*) FROM accounts_entitlement t
                                  JOIN billing_order o ON o.id = t.order_id WHERE o.id > %s GROUP BY 1""",
                               (first_order_id,)))
    payment_intents = stripe_list(emulator, "/v1/payment_intents")
    charges = stripe_list(emulator, "/v1/charges")
    events_stripe = stripe_list(emulator, "/v1/events", type="payment_intent.succeeded")
    deliveries = get_json(f"{emulator}/_emulator/webhook_deliveries")["deliveries"]
    observations = read_jsonl(out / "observations.jsonl")
    purchases = read_jsonl(out / "purchases.jsonl")
    faults = read_jsonl(out / "faults.jsonl")

    payments = stripe_payments(payment_intents, charges, events_stripe)
    moments = paid_moments(payments, observations)
    definite, possible = false_words(observations, payments, moments)
    shop_errors, stripe_js_errors = customer_errors(observations)
    injected = Counter(f["fault"] for f in faults if "skipped" not in f and f["fault"] != "faults cleared")
    skipped = Counter(f["fault"] for f in faults if "skipped" in f)
    outcome = Counter(d["outcome"] for d in deliveries)
    failed_purchases = Counter(p.get("error", "?")[:100] for p in purchases if not p["ok"])
    return {
        "command": "make chaos CHAOS_ARGS=\"" + " ".join(sys.argv[1:]) + "\"" if sys.argv[1:] else "make chaos",
        "args": {k: str(v) for k, v in vars(args).items()},
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_seconds": round(load_seconds, 1)},
        "customers": {
            "purchases": len(purchases), "saw_active": sum(1 for p in purchases if p["ok"] and not p.get(
                "left_after_paying")), "left_after_paying": sum(1 for p in purchases if p.get("left_after_paying")),
            "not_finished": dict(failed_purchases.most_common()),
            "pay_page_again": sum(1 for p in purchases if p.get("pay_attempts", 1) > 1),
            "confirm_resent": sum(1 for p in purchases if p.get("confirm_resent")),
            "already_succeeded_on_resend": sum(1 for p in purchases if p.get("already_succeeded")),
            "status_pages_and_polls": sum(1 for o in observations if o.get("page") in ("status page", "status api")),
            "checking_answers": sum(1 for o in observations if o.get("code") == "checking"),
        },
        "customer_errors": {"shop": shop_errors, "shop_total": sum(shop_errors.values()),
                            "shop_500_502": sum(n for k, n in shop_errors.items()
                                                if k.startswith(("HTTP 500", "HTTP 502"))),
                            "shop_connection_errors": sum(n for k, n in shop_errors.items()
                                                          if k.startswith("connection error")),
                            "stripe_js": stripe_js_errors},
        "faults": {"injected": dict(sorted(injected.items())), "skipped": dict(skipped),
                   "request_fault_uses_left_unused": unused_faults,
                   "webhook_deliveries": dict(outcome), "webhook_duplicates_sent": sum(
                       1 for d in deliveries if d["duplicate"] and d["attempt"] == 1),
                   "backlog_max": backlog_max},
        "drain": {"drained": drained, "seconds": round(drain_seconds, 1), "sweeps": sweeps},
        "invariants": money_invariants(orders, payments, confirmations, entitlements),
        "invariants_sql": invariants(db, first_order_id),
        "convergence": convergence(orders, events, moments, payments, final_sweep_at),
        "false_words": {"count": len(definite), "pages": definite, "possible_same_second": possible,
                        "customers": len({d["ref"] for d in definite})},
        "stripe": {"payment_intents": len(payment_intents), "succeeded": sum(len(p) for p in payments.values())},
    }


def print_report(r):
    c, e, f, inv, conv, fw = (r["customers"], r["customer_errors"], r["faults"], r["invariants"], r["convergence"],
                              r["false_words"])
    lines = [
        "",
        f"=== Chaos run, {r['started_at']} ({r['command']}), {r['machine']['cpus']} cores",
        f"Customers: {c['purchases']} purchases started, {c['saw_active']} saw 'active', "
        f"{c['left_after_paying']} closed the tab once they had paid; "
        f"{c['pay_page_again']} loaded the pay page again, {c['confirm_resent']} confirms re-sent by Stripe.js "
        f"({c['already_succeeded_on_resend']} 'already succeeded'); {c['checking_answers']} 'checking with our "
        f"payment provider' answers among {c['status_pages_and_polls']} status pages and polls",
    ]
    lines += [f"  not finished x{n}: {why}" for why, n in c["not_finished"].items()]
    lines.append("Faults injected: " + ", ".join(f"{k} x{n}" for k, n in f["injected"].items()))
    if f["skipped"]:
        lines.append("  skipped: " + ", ".join(f"{k} x{n}" for k, n in f["skipped"].items()))
    if f["request_fault_uses_left_unused"]:
        lines.append("  request faults never met by a request: " + ", ".join(
            f"{k} x{n}" for k, n in f["request_fault_uses_left_unused"].items()))
    lines.append(f"  webhook deliveries: {f['webhook_deliveries']}, duplicates sent {f['webhook_duplicates_sent']}; "
                 f"backlog max {f['backlog_max']['webhooks']} webhooks, {f['backlog_max']['tasks']} tasks")
    d = r["drain"]
    lines.append(f"Drain: {'done' if d['drained'] else 'NOT done'} in {d['seconds']} s; sweeps after the run: "
                 + ", ".join(f"#{s['run']} exit {s['exit']}, {s['open_after']} open after" for s in d["sweeps"]))
    lines.append(f"Customer-visible errors from the shop: {e['shop_total']} ({e['shop_500_502']} HTTP 500/502, "
                 f"{e['shop_connection_errors']} connection errors)")
    lines += [f"  x{n}: {k}" for k, n in e["shop"].items()]
    if e["stripe_js"]:
        lines.append("Errors Stripe.js got from Stripe (injected): " + ", ".join(
            f"{k} x{n}" for k, n in e["stripe_js"].items()))
    lines.append("Invariants: " + ", ".join(f"{k} {len(v)}" for k, v in inv.items()))
    lines += [f"  BROKEN {k}: {', '.join(v[:20])}" for k, v in inv.items() if v]
    lines.append(f"Paid orders: {conv['paid_orders']}; made active by: " + ", ".join(
        f"{k} {n}" for k, n in conv["made_active_by"].items()))
    lines.append("  payment first noticed by: " + ", ".join(f"{k} {n}" for k, n in conv["payment_noticed_by"].items()))
    s = conv["payment_to_active_seconds"]
    lines.append(f"  payment to active: p50 {s['p50']} s, p95 {s['p95']} s, max {s['max']} s ({s['count']} orders)")
    for net, s in conv["payment_to_active_seconds_by_net"].items():
        lines.append(f"    via {net}: p50 {s['p50']} s, p95 {s['p95']} s, max {s['max']} s ({s['count']})")
    lines.append(f"  needed the sweep: {len(conv['needed_the_sweep'])} {' '.join(conv['needed_the_sweep'][:20])}")
    lines.append(f"  left for a human: {len(conv['left_for_a_human'])}")
    lines += [f"    {h['ref']} {h['state']}{' (money held)' if h['held'] else ''}: {h['reason']}"
              for h in conv["left_for_a_human"]]
    lines.append(f"  NOT converged: {len(conv['not_converged'])}")
    for n in conv["not_converged"]:
        lines.append(f"    {n['ref']} {n['state']} (charged in Stripe: {n['charged_in_stripe']}): {n['reason']}")
        lines += [f"      {h}" for h in n["history"]]
    lines.append(f"False words (told 'not charged' after Stripe took the money): {fw['count']} pages, "
                 f"{fw['customers']} customers; {len(fw['possible_same_second'])} more in the same second")
    lines += [f"  {p['ref']} {p['page']} '{p['code']}' {p['seconds_after_payment']} s after payment ({p['step']})"
              for p in fw["pages"][:30]]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
