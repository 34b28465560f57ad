"""Event: retrieve and list (by type, types[], created, delivery_success)."""

import fnmatch

from ..app import Context
from ..errors import invalid
from ..params import Params
from .common import get_or_404, list_page


def retrieve(ctx: Context, params: Params, event_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "event", event_id)


def list_events(ctx: Context, params: Params) -> dict:
    event_type = params.string("type")
    types = params.array("types")
    delivery_success = params.boolean("delivery_success")
    if event_type is not None and types is not None:
        raise invalid("You may only specify one of these parameters: type, types.", param="types")
    if types is not None and len(types) > 20:
        raise invalid("You may pass at most 20 types.", param="types")
    equals = {}
    patterns: list[str] = []
    if event_type is not None:
        if "*" in event_type:
            patterns = [event_type]
        else:
            equals["type"] = event_type
    if types is not None:
        patterns = types

    def predicate(event: dict) -> bool:
        if patterns and not any(fnmatch.fnmatchcase(event["type"], p) for p in patterns):
            return False
        if delivery_success is not None:
            # "false" means some endpoint still waits for it or has given up on it.
            return (event["pending_webhooks"] == 0) == delivery_success
        return True

    page = list_page(ctx, "event", params, "/v1/events", equals=equals, predicate=predicate)
    params.finish()
    return page


ROUTES = [
    ("GET", r"/v1/events", list_events),
    ("GET", r"/v1/events/(?P<event_id>[^/]+)", retrieve),
]
