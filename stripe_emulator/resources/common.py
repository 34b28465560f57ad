"""What every resource shares: lookups, list envelopes, expand[], search."""

import base64
import re
from collections.abc import Callable
from typing import Any

from ..app import Context
from ..errors import StripeError, invalid, missing
from ..ids import kind_of
from ..params import Params, to_int

LABELS = {
    "account": "account",
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "refund": "refund",
    "balance_transaction": "balance transaction",
    "dispute": "dispute",
    "event": "event",
    "webhook_endpoint": "webhook endpoint",
}


def get_or_404(ctx: Context, kind: str, object_id: str, param: str = "id") -> dict:
    obj = ctx.emu.store[kind].get(object_id)
    if obj is None:
        raise missing(LABELS[kind], object_id, param=param)
    return obj


# -- lists -------------------------------------------------------------------------------------


def parse_created(params: Params, name: str = "created") -> dict[str, int] | None:
    value = params.raw(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {"eq": to_int(value, name)}
    if not isinstance(value, dict):
        raise invalid(f"Invalid {name}", param=name)
    bounds = {}
    for op, bound in value.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise invalid(
                f"Received unknown parameter: {name}[{op}]",
                param=f"{name}[{op}]",
                code="parameter_unknown",
            )
        bounds[op] = to_int(bound, f"{name}[{op}]")
    return bounds


def list_page(
    ctx: Context,
    kind: str,
    params: Params,
    url: str,
    *,
    equals: dict[str, Any] | None = None,
    predicate: Callable[[dict], bool] | None = None,
    created: dict[str, int] | None = None,
) -> dict:
    limit = params.integer("limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise invalid(
            "This value must be between 1 and 100 (it currently is "
            f"{limit}).",
            param="limit",
        )
    table = ctx.emu.store[kind]
    starting_after = params.string("starting_after")
    ending_before = params.string("ending_before")
    for name, cursor in (("starting_after", starting_after), ("ending_before", ending_before)):
        if cursor is not None and table.get(cursor) is None:
            raise missing(LABELS[kind], cursor, param=name)
    rows, has_more = table.page(
        equals={k: v for k, v in (equals or {}).items() if v is not None},
        created=created if created is not None else parse_created(params),
        predicate=predicate,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    return {
        "object": "list",
        "data": [ctx.emu.present(row) for row in rows],
        "has_more": has_more,
        "url": url,
    }


# -- expand[] ----------------------------------------------------------------------------------

# Fields Stripe lets you expand, per object type. Anything else is refused as Stripe does.
EXPANDABLE: dict[str, set[str]] = {
    "payment_intent": {"customer", "payment_method", "latest_charge", "application", "invoice",
                       "on_behalf_of", "review", "payment_method_configuration_details"},
    "charge": {"customer", "payment_intent", "balance_transaction", "refunds",
               "application", "application_fee", "failure_balance_transaction", "invoice",
               "on_behalf_of", "review", "source_transfer", "transfer"},
    "refund": {"charge", "payment_intent", "balance_transaction", "failure_balance_transaction",
               "source_transfer_reversal", "transfer_reversal"},
    "balance_transaction": {"source"},
    "dispute": {"charge", "payment_intent"},
    "customer": {"default_source", "sources", "invoice_settings", "test_clock", "tax_ids",
                 "subscriptions", "cash_balance", "invoice_credit_balance", "discount"},
    "payment_method": {"customer"},
    "account": {"external_accounts"},
}


def resolve(ctx: Context, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    kind = kind_of(value)
    if kind is None:
        return value
    obj = ctx.emu.store[kind].get(value)
    return ctx.emu.present(obj) if obj is not None else value


def _includable(ctx: Context, kind: str, obj: dict, field: str) -> Any:
    """Sub-lists that Stripe leaves out unless expanded."""
    emu = ctx.emu
    if kind == "customer" and field in ("sources", "tax_ids", "subscriptions"):
        return {"object": "list", "data": [], "has_more": False, "total_count": 0,
                "url": f"/v1/customers/{obj['id']}/{field}"}
    if kind == "charge" and field == "refunds":
        rows, _ = emu.store["refund"].page(equals={"charge": obj["id"]}, limit=100)
        return {"object": "list", "data": [emu.present(r) for r in rows], "has_more": False,
                "total_count": len(rows), "url": f"/v1/charges/{obj['id']}/refunds"}
    return obj.get(field)


def expand(ctx: Context, obj: Any, paths: list[str]) -> Any:
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise invalid(
                f"You cannot expand more than 4 levels of a property. Property: {path}",
                param="expand",
            )
        obj = _expand_path(ctx, obj, parts, path)
    return obj


def _expand_path(ctx: Context, obj: Any, parts: list[str], full: str) -> Any:
    if not isinstance(obj, dict) or not parts:
        return obj
    kind = obj.get("object")
    if kind in ("list", "search_result"):
        if parts[0] == "total_count" and kind == "search_result":
            return obj
        if parts[0] != "data":
            raise invalid(f"This property cannot be expanded ({full}).", param="expand")
        return {**obj, "data": [_expand_path(ctx, item, parts[1:], full) for item in obj["data"]]}
    field = parts[0]
    if field not in EXPANDABLE.get(kind, set()):
        raise invalid(f"This property cannot be expanded ({full}).", param="expand")
    if kind == "customer" and field == "invoice_settings":
        if parts[1:2] != ["default_payment_method"]:
            raise invalid(f"This property cannot be expanded ({full}).", param="expand")
        settings = dict(obj["invoice_settings"])
        value = resolve(ctx, settings.get("default_payment_method"))
        settings["default_payment_method"] = _expand_path(ctx, value, parts[2:], full)
        return {**obj, "invoice_settings": settings}
    value = _includable(ctx, kind, obj, field)
    value = resolve(ctx, value)
    return {**obj, field: _expand_path(ctx, value, parts[1:], full)}


# -- search ------------------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>metadata\[(?:'[^']*'|"[^"]*")\]|[a-z_][a-z0-9_.]*)"""
    r"""\s*(?P<op>>=|<=|:|~|>|<)\s*"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|null)\s*"""
)
_JOINER = re.compile(r"\s*(AND|OR)\s+")


def _parse_search(query: str, fields: set[str], resource: str) -> tuple[list[tuple], str]:
    clauses: list[tuple] = []
    joiners: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise _search_syntax_error(query)
        field = match["field"]
        root = "metadata" if field.startswith("metadata[") else field
        if root not in fields:
            raise invalid(
                f"Field '{field}' is an unsupported search field for resource {resource}. See "
                "https://stripe.com/docs/search#query-fields for a list of supported fields.",
                param="query",
            )
        raw = match["value"]
        if raw == "null":
            value: Any = None
        elif raw[0] in "'\"":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        else:
            value = float(raw) if "." in raw else int(raw)
        path = ["metadata", field[10:-2]] if root == "metadata" else field.split(".")
        clauses.append((bool(match["neg"]), path, match["op"], value))
        position = match.end()
        if position >= len(query):
            break
        joiner = _JOINER.match(query, position)
        if joiner is None:
            raise _search_syntax_error(query)
        joiners.add(joiner[1])
        position = joiner.end()
    if len(joiners) > 1:
        raise invalid("Search queries cannot mix AND and OR.", param="query")
    return clauses, (joiners.pop() if joiners else "AND")


def _search_syntax_error(query: str) -> StripeError:
    return invalid(
        f"We were unable to parse your search query. Try using the format `metadata[\"key\"]:"
        f"\"value\"` to query for metadata or `key:\"value\"` to query for other fields. Query: "
        f"{query}",
        param="query",
    )


def _lookup(obj: dict, path: list[str]) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _clause_matches(obj: dict, clause: tuple) -> bool:
    negate, path, op, expected = clause
    actual = _lookup(obj, path)
    if op == ":":
        if expected is None:
            result = actual is None
        elif isinstance(actual, bool):
            result = str(actual).lower() == str(expected).lower()
        elif isinstance(actual, (int, float)):
            result = isinstance(expected, (int, float)) and actual == expected
        else:
            result = actual is not None and str(actual).lower() == str(expected).lower()
    elif op == "~":
        result = actual is not None and str(expected).lower() in str(actual).lower()
    else:
        if not isinstance(actual, (int, float)) or not isinstance(expected, (int, float)):
            result = False
        else:
            result = {
                ">": actual > expected,
                "<": actual < expected,
                ">=": actual >= expected,
                "<=": actual <= expected,
            }[op]
    return not result if negate else result


def search_page(ctx: Context, kind: str, params: Params, url: str, fields: set[str],
                resource: str) -> dict:
    query = params.string("query", required=True)
    limit = params.integer("limit") or 10
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    page = params.string("page")
    clauses, joiner = _parse_search(query, fields, resource)
    equals: dict[str, Any] = {}
    if joiner == "AND" or len(clauses) == 1:
        # Let an index narrow the walk: an exact metadata or customer clause.
        for negate, path, op, value in clauses:
            if negate or op != ":" or not isinstance(value, str):
                continue
            if path[0] == "metadata":
                equals = {"metadata": (path[1], value)}
                break
            if path == ["customer"] or path == ["payment_intent"]:
                equals = {path[0]: value}

    def predicate(obj: dict) -> bool:
        if joiner == "OR":
            return any(_clause_matches(obj, c) for c in clauses)
        return all(_clause_matches(obj, c) for c in clauses)

    table = ctx.emu.store[kind]
    starting_after = None
    if page:
        try:
            starting_after = base64.urlsafe_b64decode(page.encode()).decode()
        except ValueError:
            starting_after = None
        if starting_after is None or table.get(starting_after) is None:
            raise invalid("Invalid page token.", param="page")
    rows, has_more = table.page(
        equals=equals, predicate=predicate, limit=limit, starting_after=starting_after
    )
    next_page = None
    if has_more and rows:
        next_page = base64.urlsafe_b64encode(rows[-1]["id"].encode()).decode()
    result = {
        "object": "search_result",
        "data": [ctx.emu.present(row) for row in rows],
        "has_more": has_more,
        "next_page": next_page,
        "url": url,
    }
    return result


def search_total_count(ctx: Context, kind: str, result: dict, params_data: dict,
                       fields: set[str], resource: str) -> None:
    """``expand[]=total_count`` on a search: count every match (a full walk, as it is costly on
    Stripe too)."""
    clauses, joiner = _parse_search(params_data["query"], fields, resource)
    check = any if joiner == "OR" else all
    result["total_count"] = sum(
        1 for obj in ctx.emu.store[kind].rows.values() if check(_clause_matches(obj, c)
                                                                 for c in clauses)
    )
