"""Restricted API keys (rk_test_...), as Stripe enforces them.

A restricted key holds a permission per resource, None, Read or Write (Write implies Read). A GET
needs Read; a POST or DELETE needs Write. A request outside the key's permissions gets Stripe's
403: an invalid_request_error (stripe-python raises stripe.PermissionError) naming the permission
that would let it through ("rak_payment_intent_write"). Keys are given on the command line
(--restricted-key KEY=resource:read,resource:write) or through the control API.
"""

import re

from .errors import StripeError

KEY_SHAPE = re.compile(r"rk_test_[0-9A-Za-z]{24,}")
LEVELS = ("read", "write")
# The resource a path belongs to, by its first segment, named as Stripe names its permissions.
RESOURCES = {
    "account": "account",
    "accounts": "account",
    "balance_transactions": "balance",
    "charges": "charge",
    "customers": "customer",
    "disputes": "dispute",
    "events": "event",
    "payment_intents": "payment_intent",
    "payment_methods": "payment_method",
    "refunds": "refund",
    "webhook_endpoints": "webhook",
}


# What an expanded field is, so that expanding it needs Read on it as well ("data.customer").
EXPANDED = {
    "balance_transaction": "balance",
    "charge": "charge",
    "customer": "customer",
    "latest_charge": "charge",
    "payment_intent": "payment_intent",
    "payment_method": "payment_method",
    "refunds": "refund",
}


def parse_permissions(text: str) -> dict[str, str]:
    """"payment_intent:write,charge:read" -> {"payment_intent": "write", "charge": "read"}."""
    permissions = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        resource, _, level = item.partition(":")
        if resource not in RESOURCES.values() or level not in LEVELS:
            raise ValueError(f"{item!r}: a permission is RESOURCE:read or RESOURCE:write, RESOURCE one of "
                             f"{', '.join(sorted(set(RESOURCES.values())))}")
        permissions[resource] = level
    return permissions


def _mask(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]


def refused(permissions: dict[str, str], key: str, account_id: str, method: str, path: str,
            expand=None) -> StripeError | None:
    """Stripe's 403 when the key's permissions do not cover this request (and every object it
    expands), else None."""
    segment = path.removeprefix("/v1/").split("/", 1)[0]
    wanted = [(RESOURCES.get(segment, segment), "read" if method == "GET" else "write")]
    for expanded in [expand] if isinstance(expand, str) else (expand or []):
        wanted += [(EXPANDED[name], "read") for name in str(expanded).split(".") if name in EXPANDED]
    for resource, needed in wanted:
        if permissions.get(resource) not in ("write", needed):
            return _refusal(key, account_id, resource, needed)
    return None


def _refusal(key: str, account_id: str, resource: str, needed: str) -> StripeError:
    return StripeError(
        403,
        f"The provided key '{_mask(key)}' does not have the required permissions for this endpoint on "
        f"account '{account_id}'. Having the 'rak_{resource}_{needed}' permission would allow this "
        "request to continue.",
        saved=False,
    )
