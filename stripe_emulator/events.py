"""Events in Stripe's envelope, stored for the Events API and handed to the webhook dispatcher."""

import json
from typing import TYPE_CHECKING

from .ids import new_id

if TYPE_CHECKING:
    from .app import Context


def snapshot(obj: dict) -> dict:
    # A deep copy that later updates to the live object cannot reach; a JSON round trip is the
    # fastest deep copy for plain JSON data.
    return json.loads(json.dumps(obj))


def previous_attributes(before: dict, after: dict) -> dict:
    """Top-level keys whose value changed, with their old values; one level deeper for hashes
    such as metadata, as Stripe reports them (a key that did not exist before is ``null``)."""
    changed = {}
    for key, new_value in after.items():
        old_value = before.get(key)
        if old_value == new_value:
            continue
        if isinstance(old_value, dict) and isinstance(new_value, dict) and key == "metadata":
            changed[key] = {
                k: old_value.get(k)
                for k in set(old_value) | set(new_value)
                if old_value.get(k) != new_value.get(k)
            }
        else:
            changed[key] = old_value
    return changed


def emit_if_changed(ctx: "Context", event_type: str, obj: dict, before: dict) -> None:
    """Emit an ``*.updated`` event only when an update changed something, as Stripe does."""
    changed = previous_attributes(before, obj)
    if changed:
        emit(ctx, event_type, obj, changed)


def emit(ctx: "Context", event_type: str, obj: dict, previous: dict | None = None) -> dict | None:
    if not ctx.emit_events:
        return None
    emu = ctx.emu
    endpoints = [
        endpoint
        for endpoint in emu.store["webhook_endpoint"].rows.values()
        if endpoint["status"] == "enabled"
        and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
    ]
    data: dict = {"object": snapshot(emu.present(obj))}
    if previous:
        data["previous_attributes"] = snapshot(previous)
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": emu.config.api_version,
        "created": ctx.now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "type": event_type,
    }
    emu.store.insert("event", event)
    emu.store.private[event["id"]] = {
        "deliveries": {endpoint["id"]: "pending" for endpoint in endpoints}
    }
    emu.webhooks.enqueue(event, [endpoint["id"] for endpoint in endpoints])
    return event
