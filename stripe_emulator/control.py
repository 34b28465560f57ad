"""The fault-injection control API under /_emulator/ (JSON in and out; loopback callers with the
emulator's secret key only, see server._control_refusal), plus the pages the emulator serves for the
browser: Stripe.js at /v3/, the 3-D Secure challenge, receipts."""

import json
import os
import re
import time
from html import escape
from urllib.parse import parse_qsl

from . import restricted
from .api import Request, Response
from .app import Emulator
from .errors import StripeError
from .params import Params
from .resources import customers, payment_intents, payment_methods, refunds
from .resources.account import set_statement_prefix

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def _json(status: int, obj) -> Response:
    return Response(status, json.dumps(obj, indent=2).encode(),
                    {"Content-Type": "application/json"})


def _bad(message: str, status: int = 400) -> Response:
    return _json(status, {"error": {"message": message, "type": "invalid_request_error"}})


def refused(status: int, message: str) -> Response:
    return _bad(message, status)


# A snapshot named by a caller is a file name, never a path: it is written in the emulator's own
# snapshot directory (--snapshot-dir, else the directory of --snapshot) and nowhere else.
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def snapshot_path(emu: Emulator, name: str) -> str:
    if not isinstance(name, str) or not SNAPSHOT_NAME.fullmatch(name) or ".." in name:
        raise ValueError("a snapshot name is a file name (letters, digits, '.', '-', '_'), not a path")
    directory = emu.config.snapshot_directory()
    if not directory:
        raise ValueError("no snapshot directory: start the emulator with --snapshot-dir DIR or --snapshot FILE")
    path = os.path.join(directory, name)
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(directory):
        raise ValueError("a snapshot stays in the emulator's snapshot directory")
    return path


def _static(name: str, content_type: str) -> Response:
    path = os.path.join(STATIC_DIR, name)
    if not os.path.isfile(path):
        return _bad(f"{name} is not there yet", 404)
    with open(path, "rb") as fh:
        return Response(200, fh.read(), {"Content-Type": content_type,
                                          "Cache-Control": "no-cache"})


def _body(req: Request) -> dict:
    if not req.body:
        return {}
    if req.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(req.body)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    return dict(parse_qsl(req.body.decode(), keep_blank_values=True))


def _as_stripe(emu: Emulator, req: Request, change, answer) -> Response:
    """A change Stripe itself would make (a bank's answer): run with the emulator's context, so its
    events are sent as Stripe's; a refusal comes back in Stripe's error shape. Called holding emu.lock."""
    ctx = emu.context(request_id=req.request_id, api_base=req.api_base)
    try:
        change(ctx)
    except StripeError as error:
        return _json(error.status, error.body(req.request_id))
    return _json(200, answer())


def handle(emu: Emulator, req: Request) -> Response:
    try:
        return _dispatch(emu, req)
    except (ValueError, KeyError, TypeError) as exc:
        return _bad(f"{type(exc).__name__}: {exc}")


ROUTES = []


def route(method: str, pattern: str):
    def register(fn):
        ROUTES.append((method, re.compile(pattern), fn))
        return fn

    return register


def _dispatch(emu: Emulator, req: Request) -> Response:
    for method, pattern, fn in ROUTES:
        match = pattern.fullmatch(req.path)
        if match is not None and method == req.method:
            return fn(emu, req, **match.groupdict())
    return _bad(f"Unrecognized emulator URL ({req.method}: {req.path})", 404)


# -- browser-facing pages ----------------------------------------------------------------------


@route("GET", r"/v3/?|/v3/stripe\.js")
def stripe_js(emu, req):
    return _static("stripe.js", "application/javascript; charset=utf-8")


@route("GET", r"/_emulator/3ds/(?P<pi_id>[^/]+)")
def challenge_page(emu, req, pi_id):
    return _static("challenge.html", "text/html; charset=utf-8")


@route("POST", r"/_emulator/3ds/(?P<pi_id>[^/]+)/(?P<outcome>complete|fail)")
def challenge_result(emu, req, pi_id, outcome):
    data = _body(req)
    with emu.lock:
        pi = emu.store["payment_intent"].get(pi_id)
        if pi is None:
            return _bad(f"No such payment_intent: '{pi_id}'", 404)
        if data.get("client_secret") != pi["client_secret"]:
            return _bad("The client_secret provided does not match the client_secret associated "
                        "with the PaymentIntent.")
        resolve = (payment_intents.complete_authentication if outcome == "complete"
                   else payment_intents.fail_authentication)
        return _as_stripe(emu, req, lambda ctx: resolve(ctx, pi), lambda: {"status": pi["status"]})


@route("POST", r"/_emulator/refunds/(?P<refund_id>[^/]+)/fail")
def refund_failure(emu, req, refund_id):
    """The bank sends a refund back: what Stripe's refund-failure test card does some time later."""
    data = _body(req)
    with emu.lock:
        refund = emu.store["refund"].get(refund_id)
        if refund is None:
            return _bad(f"No such refund: '{refund_id}'", 404)
        reason = data.get("failure_reason", "expired_or_canceled_card")
        return _as_stripe(emu, req, lambda ctx: refunds.fail(ctx, refund, reason), lambda: refund)


@route("GET", r"/_emulator/receipts/(?P<charge_id>[^/]+)")
def receipt(emu, req, charge_id):
    with emu.lock:
        charge = emu.store["charge"].get(charge_id)
        if charge is None:
            return _bad(f"No such charge: '{charge_id}'", 404)
        card = charge["payment_method_details"]["card"]
        text = (
            f"<!doctype html><title>Receipt {escape(charge_id)}</title>"
            f"<h1>Receipt from {escape(charge['calculated_statement_descriptor'] or '')}</h1>"
            f"<p>{charge['amount'] / 100:.2f} {escape(charge['currency'].upper())} paid with "
            f"{escape(card['brand'])} ending {escape(card['last4'])}.</p>"
            f"<p>Refunded: {charge['amount_refunded'] / 100:.2f}</p>"
        )
    return Response(200, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


# -- state -------------------------------------------------------------------------------------


@route("GET", r"/_emulator/state")
def state(emu, req):
    with emu.lock:
        counts = emu.store.counts()
        endpoints = [
            {"id": e["id"], "url": e["url"], "status": e["status"],
             "from_command_line": e["id"] in emu.cli_endpoint_ids}
            for e in emu.store["webhook_endpoint"].rows.values()
        ]
    return _json(200, {
        "counts": counts,
        "clock": {"now": emu.clock.now(), "offset": emu.clock.offset},
        "webhooks": emu.webhooks.status(),
        "webhook_endpoints": endpoints,
        "faults": emu.faults.list(),
        "rate_limits": emu.rate_limits.status(),
        "idempotency_keys": len(emu.idempotency.entries),
        "requests": [{"key": k, "method": m, "path": p, "count": n}
                     for (k, m, p), n in sorted(emu.request_counts.items())],
        "keys": {"publishable": emu.config.publishable_key},
    })


@route("POST", r"/_emulator/reset")
def reset(emu, req):
    emu.reset()
    return state(emu, req)


@route("GET", r"/_emulator/clock")
def clock(emu, req):
    return _json(200, {"now": emu.clock.now(), "offset": emu.clock.offset})


@route("POST", r"/_emulator/clock/advance")
def advance_clock(emu, req):
    seconds = int(_body(req)["seconds"])
    now = emu.clock.advance(seconds)
    return _json(200, {"now": now, "offset": emu.clock.offset})


@route("POST", r"/_emulator/snapshot")
def snapshot(emu, req):
    data = _body(req)
    if "path" in data:
        return _bad('snapshots are named, not placed: pass {"name": "FILE.json"}')
    name = data.get("name")
    path = snapshot_path(emu, name) if name is not None else emu.config.snapshot
    if not path:
        return _bad('no snapshot file: start with --snapshot FILE, or pass {"name": ...} with --snapshot-dir DIR')
    size = emu.save_snapshot(path)
    return _json(200, {"path": path, "bytes": size})


@route("POST", r"/_emulator/account")
def account_settings(emu, req):
    """The account's settings a person changes in the Dashboard: {"statement_prefix": "ACME"}."""
    prefix = _body(req).get("statement_prefix")
    if not isinstance(prefix, str) or not 2 <= len(prefix) <= 10:
        return _bad("statement_prefix: 2 to 10 characters, as Stripe's Dashboard allows")
    with emu.lock:
        account = set_statement_prefix(emu, prefix)
    return _json(200, account)


@route("POST", r"/_emulator/restricted_keys")
def restricted_key_add(emu, req):
    """A restricted key made in the Dashboard: {"key": "rk_test_...", "permissions": {"charge": "read"}}."""
    data = _body(req)
    key, permissions = data.get("key"), data.get("permissions")
    if not isinstance(key, str) or not restricted.KEY_SHAPE.fullmatch(key):
        return _bad("key: rk_test_ followed by at least 24 letters or digits")
    if not isinstance(permissions, dict):
        return _bad('permissions: {"RESOURCE": "read" or "write", ...}')
    try:
        parsed = restricted.parse_permissions(",".join(f"{r}:{level}" for r, level in permissions.items()))
    except ValueError as exc:
        return _bad(str(exc))
    with emu.lock:
        emu.restricted_keys[key] = parsed
    return _json(200, {"key": key, "permissions": parsed})


# -- request faults ----------------------------------------------------------------------------


@route("POST", r"/_emulator/faults")
def add_fault(emu, req):
    fault = emu.faults.add(_body(req))
    return _json(200, {"fault": fault.__dict__})


@route("GET", r"/_emulator/faults")
def list_faults(emu, req):
    return _json(200, {"faults": emu.faults.list()})


@route("DELETE", r"/_emulator/faults")
def clear_faults(emu, req):
    emu.faults.clear()
    return _json(200, {"faults": []})


# -- rate limits -------------------------------------------------------------------------------


@route("GET", r"/_emulator/rate_limits")
def rate_limit_status(emu, req):
    return _json(200, emu.rate_limits.status())


@route("POST", r"/_emulator/rate_limits")
def set_rate_limits(emu, req):
    """{"mode": "test"|"live"|"off"}, or {"overall": N, "per_endpoint": M} (either may be left
    out) for a budget of one's own; counts start afresh. Reset goes back to --rate-limits."""
    data = _body(req)
    try:
        emu.rate_limits.configure(mode=data.get("mode"), overall=data.get("overall"),
                                  per_endpoint=data.get("per_endpoint"))
    except ValueError as exc:
        return _bad(str(exc))
    return _json(200, emu.rate_limits.status())


# -- webhook faults ----------------------------------------------------------------------------


@route("GET", r"/_emulator/webhooks")
def webhook_status(emu, req):
    return _json(200, emu.webhooks.status())


@route("POST", r"/_emulator/webhooks/(?P<action>pause|resume|drop|duplicate|delay|reorder|flush)")
def webhook_fault(emu, req, action):
    data = _body(req)
    count = int(data.get("count", 1))
    hooks = emu.webhooks
    with emu.lock:
        if action == "pause":
            hooks.pause()
        elif action == "resume":
            hooks.resume()
        elif action == "drop":
            hooks.drop_next(count)
        elif action == "duplicate":
            hooks.duplicate_next(count)
        elif action == "delay":
            hooks.delay_next(count, float(data["seconds"]))
        elif action == "reorder":
            mode = data.get("mode", "reverse")
            if mode not in ("reverse", "shuffle"):
                raise ValueError('mode must be "reverse" or "shuffle"')
            hooks.reorder_next(count, mode)
        else:
            hooks.flush_reorder()
    return _json(200, hooks.status())


@route("GET", r"/_emulator/webhook_deliveries")
def deliveries(emu, req):
    filters = dict(parse_qsl(req.query))
    rows = list(emu.webhooks.log)
    for name in ("event", "endpoint", "outcome", "type"):
        if name in filters:
            rows = [row for row in rows if row[name] == filters[name]]
    return _json(200, {"deliveries": rows})


@route("POST", r"/_emulator/events/(?P<event_id>[^/]+)/resend")
def resend(emu, req, event_id):
    data = _body(req)
    with emu.lock:
        event = emu.store["event"].get(event_id)
        if event is None:
            return _bad(f"No such event: '{event_id}'", 404)
        endpoint_id = data.get("endpoint")
        if endpoint_id:
            if emu.store["webhook_endpoint"].get(endpoint_id) is None:
                return _bad(f"No such webhook endpoint: '{endpoint_id}'", 404)
            endpoints = [endpoint_id]
        else:
            endpoints = [
                e["id"] for e in emu.store["webhook_endpoint"].rows.values()
                if e["status"] == "enabled"
                and ("*" in e["enabled_events"] or event["type"] in e["enabled_events"])
            ]
        deliveries = emu.store.private[event_id]["deliveries"]
        for endpoint in endpoints:
            if deliveries.get(endpoint) != "succeeded":
                deliveries[endpoint] = "pending"
        event["pending_webhooks"] = sum(1 for s in deliveries.values() if s != "succeeded")
        emu.webhooks.enqueue(event, endpoints, resend=True)
    return _json(200, {"event": event_id, "endpoints": endpoints})


# -- seeding -----------------------------------------------------------------------------------


@route("POST", r"/_emulator/seed")
def seed(emu, req):
    """Create many real payments through the normal code path, without events or webhooks.

    ``{"charges": N, "customers": K, "start": unix_ts, "spacing": seconds, "amount": cents}``:
    K customers each with a saved card, and N succeeded PaymentIntents (with their charges and
    balance transactions) spread round-robin over them, back-dated from ``start`` every
    ``spacing`` seconds so ``created`` filters have something to cut.
    """
    data = _body(req)
    count = int(data.get("charges", 0))
    customer_count = max(1, int(data.get("customers", 1)))
    spacing = float(data.get("spacing", 1))
    amount = int(data.get("amount", 2000))
    started = time.perf_counter()
    with emu.lock:
        start = int(data.get("start", emu.clock.now() - int(count * spacing)))
        ctx = emu.context(request_id=None, api_base=req.api_base, emit_events=False,
                          fixed_now=start)
        seeded_customers = []
        for i in range(customer_count):
            customer = customers.create(ctx, Params({"email": f"seed{i}@example.com"}))
            pm = payment_methods.from_test_id(ctx, "pm_card_visa")
            payment_methods.attach(ctx, pm, customer["id"])
            seeded_customers.append((customer["id"], pm["id"]))
        for i in range(count):
            customer_id, pm_id = seeded_customers[i % customer_count]
            ctx.fixed_now = start + int(i * spacing)
            payment_intents.create(ctx, Params({
                "amount": str(amount), "currency": "usd", "customer": customer_id,
                "payment_method": pm_id, "confirm": "true",
            }))
    return _json(200, {
        "customers": [c for c, _ in seeded_customers],
        "charges": count,
        "first_created": start,
        "last_created": start + int(max(count - 1, 0) * spacing),
        "seconds": round(time.perf_counter() - started, 3),
    })
