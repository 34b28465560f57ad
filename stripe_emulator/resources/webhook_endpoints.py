"""WebhookEndpoint: where events are delivered. The signing secret is only shown on create."""

from ..app import Context
from ..errors import StripeError, invalid
from ..ids import new_id, random_string
from ..params import Params, merge_metadata
from ..versions import check as check_version
from .common import get_or_404, list_page


def build_endpoint(emu, url: str, enabled_events: list[str], *, secret: str | None = None,
                   description: str | None = None, metadata: dict | None = None,
                   api_version: str | None = None) -> dict:
    if api_version is None and secret is not None:
        # Given on the command line (--webhook): as `manage.py stripe_webhook_endpoint --create`
        # makes it, with the emulator's version, rather than as the Dashboard (the account default).
        api_version = emu.config.api_version
    endpoint = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": None,
        "created": emu.clock.now(),
        "description": description,
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata or {},
        "status": "enabled",
        "url": url,
    }
    emu.store.insert("webhook_endpoint", endpoint)
    emu.store.private[endpoint["id"]] = {"secret": secret or f"whsec_{random_string(32)}"}
    return endpoint


def _enabled_events(params: Params, required: bool) -> list[str] | None:
    events = params.array("enabled_events")
    if events is None:
        if required:
            raise invalid(
                "Missing required param: enabled_events.",
                param="enabled_events",
                code="parameter_missing",
            )
        return None
    if not all(isinstance(e, str) and e for e in events):
        raise invalid("Invalid enabled_events", param="enabled_events")
    return events


def create(ctx: Context, params: Params) -> dict:
    url = params.string("url", required=True)
    if not url.startswith(("http://", "https://")):
        raise invalid(f"Invalid URL: {url}", param="url", code="url_invalid")
    events = _enabled_events(params, required=True)
    description = params.string("description")
    metadata = params.metadata()
    api_version = params.string("api_version")
    if api_version is not None:
        try:
            check_version(api_version, ctx.emu.config.api_version)
        except StripeError:
            raise invalid(f"Invalid Stripe API version: {api_version}", param="api_version") from None
    params.accept("connect")
    params.finish()
    endpoint = build_endpoint(ctx.emu, url, events, description=description,
                              metadata=metadata, api_version=api_version)
    return {**endpoint, "secret": ctx.emu.store.private[endpoint["id"]]["secret"]}


def retrieve(ctx: Context, params: Params, endpoint_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "webhook_endpoint", endpoint_id)


def update(ctx: Context, params: Params, endpoint_id: str) -> dict:
    endpoint = get_or_404(ctx, "webhook_endpoint", endpoint_id)
    url = params.string("url")
    events = _enabled_events(params, required=False)
    description = params.string("description")
    disabled = params.boolean("disabled")
    metadata = params.metadata()
    params.finish()
    if url is not None:
        endpoint["url"] = url
    if events is not None:
        endpoint["enabled_events"] = events
    if "description" in params:
        endpoint["description"] = description
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
    endpoint["metadata"] = merge_metadata(endpoint["metadata"], metadata)
    return endpoint


def delete(ctx: Context, params: Params, endpoint_id: str) -> dict:
    params.finish()
    get_or_404(ctx, "webhook_endpoint", endpoint_id)
    ctx.emu.store["webhook_endpoint"].delete(endpoint_id)
    ctx.emu.cli_endpoint_ids.discard(endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(ctx: Context, params: Params) -> dict:
    page = list_page(ctx, "webhook_endpoint", params, "/v1/webhook_endpoints")
    params.finish()
    return page


ROUTES = [
    ("POST", r"/v1/webhook_endpoints", create),
    ("GET", r"/v1/webhook_endpoints", list_endpoints),
    ("GET", r"/v1/webhook_endpoints/(?P<endpoint_id>[^/]+)", retrieve),
    ("POST", r"/v1/webhook_endpoints/(?P<endpoint_id>[^/]+)", update),
    ("DELETE", r"/v1/webhook_endpoints/(?P<endpoint_id>[^/]+)", delete),
]
