"""The /v1 API: authentication, routing, parameters, idempotency and request faults.

``handle`` turns one HTTP request into a ``Response`` and has no HTTP machinery of its own, so the
server stays a thin transport.
"""

import base64
import json
import logging
import re
import time
import traceback
from dataclasses import dataclass, field

from . import restricted
from .app import ACCOUNT_ID, Emulator
from .errors import StripeError, rate_limited, unrecognized_url
from .ids import random_string
from .params import Params, parse_form
from .resources import (
    account,
    balance_transactions,
    charges,
    customers,
    disputes,
    events_api,
    payment_intents,
    payment_methods,
    refunds,
    webhook_endpoints,
)
from .resources.common import expand
from .versions import check as check_version

log = logging.getLogger("stripe_emulator")

_MODULES = (account, customers, payment_methods, payment_intents, charges, refunds,
            balance_transactions, disputes, events_api, webhook_endpoints)
ROUTES = [
    (method, re.compile(pattern + r"/?"), handler)
    for module in _MODULES
    for method, pattern, handler in module.ROUTES
]

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
PUBLISHABLE_REFUSED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. You "
    "can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)
UNKNOWN_ERROR = "An unknown error occurred"


@dataclass
class Request:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]  # lower-cased names
    request_id: str
    api_base: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Transport-level faults the server acts out instead of replying normally.
    reset: bool = False
    hold_seconds: float | None = None


def new_request_id() -> str:
    return f"req_{random_string(14)}"


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error_response(error: StripeError, request_id: str) -> Response:
    return Response(error.status, _json(error.body(request_id)), dict(error.headers))


def _api_key(req: Request, params: dict) -> str | None:
    header = req.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value).decode().split(":", 1)[0]
        except ValueError:
            return None
        return user or None
    key = params.get("key")
    if isinstance(key, str) and key.startswith("pk_"):
        return key  # Stripe.js sends its publishable key as a parameter
    return None


def _mask(key: str) -> str:
    prefix = key[:8] if key.startswith(("sk_", "pk_", "rk_")) else ""
    return prefix + "*" * max(len(key) - len(prefix) - 4, 0) + key[-4:]


def _route(method: str, path: str):
    for route_method, pattern, handler in ROUTES:
        if route_method != method:
            continue
        match = pattern.fullmatch(path)
        if match is not None:
            return handler, match.groupdict()
    return None, {}


def _id_free(path: str) -> str:
    """/v1/payment_intents/pi_123/confirm -> /v1/payment_intents/{}/confirm, to count by endpoint."""
    return re.sub(r"/[a-z]+_(?=[a-z]*[A-Z0-9])[A-Za-z0-9_]+", "/{}", path)


def handle(emu: Emulator, req: Request) -> Response:
    response = _rate_limited(emu, req) or _handle(emu, req)
    response.headers.setdefault("Request-Id", req.request_id)
    response.headers["Stripe-Version"] = req.headers.get("stripe-version", emu.config.api_version)
    response.headers.setdefault("Content-Type", "application/json")
    response.headers["Cache-Control"] = "no-cache, no-store"
    return response


def _rate_limited(emu: Emulator, req: Request) -> Response | None:
    """Stripe's rate limiter (stripe_emulator/ratelimit.py, when on) answers before anything else.
    Stripe.js's requests (the publishable key, as a parameter) are not counted."""
    _scheme, _, key = req.headers.get("authorization", "").partition(" ")
    if not key or key.strip().startswith("pk_"):
        return None
    reason = emu.rate_limits.admit(f"{req.method} {_id_free(req.path)}")
    return None if reason is None else _error_response(rate_limited(reason), req.request_id)


def _handle(emu: Emulator, req: Request) -> Response:
    fault = emu.faults.take("fail", req.method, req.path)
    if fault is not None:
        if fault.status == "timeout":
            return Response(0, hold_seconds=fault.seconds)
        if fault.status == "429":
            error = rate_limited()
        else:
            error = StripeError(500, UNKNOWN_ERROR, type="api_error", saved=False)
        return _error_response(error, req.request_id)

    try:
        raw = parse_form(req.query) if req.query else {}
        if req.method == "POST" and req.body:
            raw.update(parse_form(req.body.decode("utf-8", errors="replace")))
    except StripeError as error:
        return _error_response(error, req.request_id)

    key = _api_key(req, raw)
    if key is None:
        return _error_response(StripeError(401, NO_KEY, saved=False), req.request_id)
    if key == emu.config.secret_key:
        publishable = False
    elif key == emu.config.publishable_key:
        publishable = True
    elif key in emu.restricted_keys:
        publishable = False
    else:
        return _error_response(
            StripeError(401, f"Invalid API Key provided: {_mask(key)}", saved=False),
            req.request_id,
        )
    try:
        check_version(req.headers.get("stripe-version"), emu.config.api_version)
    except StripeError as error:
        return _error_response(error, req.request_id)
    stripe_account = req.headers.get("stripe-account")
    if stripe_account and stripe_account != ACCOUNT_ID:
        return _error_response(
            StripeError(
                403,
                f"The provided key '{_mask(key)}' does not have access to account "
                f"'{stripe_account}' (or that account does not exist). Application access may "
                "have been revoked.",
                code="account_invalid",
                saved=False,
            ),
            req.request_id,
        )

    handler, path_args = _route(req.method, req.path)
    if handler is None:
        return _error_response(unrecognized_url(req.method, req.path), req.request_id)
    with emu.lock:
        emu.request_counts["publishable" if publishable else "secret", req.method, _id_free(req.path)] += 1
    if key in emu.restricted_keys:
        error = restricted.refused(emu.restricted_keys[key], key, ACCOUNT_ID, req.method, req.path,
                                   raw.get("expand"))
        if error is not None:
            return _error_response(error, req.request_id)
    if publishable:
        if handler not in payment_intents.PUBLISHABLE_ROUTES:
            return _error_response(StripeError(401, PUBLISHABLE_REFUSED, saved=False),
                                   req.request_id)
        raw.pop("key", None)

    idempotency_key = req.headers.get("idempotency-key") if req.method == "POST" else None
    if idempotency_key:
        try:
            replay = emu.idempotency.claim(key, idempotency_key, req.method, req.path, raw)
        except StripeError as error:
            return _error_response(error, req.request_id)
        if replay is not None:
            return Response(
                replay.status,
                replay.body,
                {
                    "Idempotent-Replayed": "true",
                    "Original-Request": replay.request_id,
                    "Idempotency-Key": idempotency_key,
                },
            )

    latency = emu.faults.take("latency", req.method, req.path)
    if latency is not None:
        time.sleep(latency.seconds)

    response, saved = _execute(emu, req, handler, path_args, raw, publishable, idempotency_key)

    if idempotency_key:
        response.headers["Idempotency-Key"] = idempotency_key
        if saved:
            emu.idempotency.save(key, idempotency_key, response.status, response.body,
                                 req.request_id)
        else:
            emu.idempotency.release(key, idempotency_key)

    lose = emu.faults.take("lose_response", req.method, req.path)
    if lose is not None:
        log.info("fault: losing the response to %s %s (%s)", req.method, req.path, lose.mode)
        if lose.mode == "reset":
            return Response(0, reset=True)
        return _error_response(StripeError(500, UNKNOWN_ERROR, type="api_error"), req.request_id)
    return response


def _execute(emu, req, handler, path_args, raw, publishable, idempotency_key):
    """Run the endpoint; returns the response and whether the idempotency layer keeps it."""
    expand_paths = raw.pop("expand", None) or []
    if isinstance(expand_paths, str):
        expand_paths = [expand_paths]
    ctx = emu.context(
        request_id=req.request_id,
        idempotency_key=idempotency_key,
        publishable=publishable,
        api_base=req.api_base,
        expand=[] if publishable else list(expand_paths),
    )
    try:
        with emu.lock:
            result = handler(ctx, Params(raw), **path_args)
            if ctx.expand:
                try:
                    result = expand(ctx, result, [p for p in ctx.expand if p != "total_count"])
                except StripeError as error:
                    error.saved = True  # the endpoint has already run
                    raise
            return Response(200, _json(emu.present(result))), True
    except StripeError as error:
        return _error_response(error, req.request_id), error.saved
    except Exception:
        log.error("unhandled error in %s %s\n%s", req.method, req.path, traceback.format_exc())
        error = StripeError(500, UNKNOWN_ERROR, type="api_error")
        return _error_response(error, req.request_id), True
