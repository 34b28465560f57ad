"""One way to ask django-ratelimit "is this request over the limit?", counting it as it asks.

Limits are counted per client address (config/client_ip.py, through RATELIMIT_IP_META_KEY), per
another value such as an email address, or per client and value together (`per_client=True`):
django-ratelimit hashes the value into the cache key, so any length is fine. Each view names its
limits as constants beside it.

A limit counted per email address alone lets anyone who types that address use it up, so such a
limit only ever caps what the address receives (emails), never what its owner may do: the
customer's own checkout is counted per client and address together (docs/decisions/0013-access-is-proved.md).
"""

from django_ratelimit.core import _get_ip, get_usage


def _key(request, value: str | None, per_client: bool):
    if value is None:
        return "ip"
    if per_client:
        # The client as django-ratelimit masks it (an IPv6 /64 counts as one client), with the value.
        return lambda _group, _request: f"{_get_ip(request)}|{value}"
    return lambda _group, _request: value


def retry_after(request, *, group: str, rate: str, value: str | None = None, per_client: bool = False) -> int | None:
    """Count this request against `rate` ("10/h"); None while within it, else the seconds until
    the count starts again (at least 1; when counting itself failed, an hour: we cannot say better)."""
    usage = get_usage(request, group=group, key=_key(request, value, per_client), rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return usage["time_left"] if usage["time_left"] > 0 else 3600


def over_limit(request, *, group: str, rate: str, value: str | None = None, per_client: bool = False) -> bool:
    """Count this request against `rate` ("10/h") for its client, for `value` when given, or for
    both together with `per_client=True`."""
    return retry_after(request, group=group, rate=rate, value=value, per_client=per_client) is not None


def try_again_words(seconds: int) -> str:
    """When a limit lets the next request through, as a page says it: "in about 40 minutes"."""
    minutes = max(1, -(-seconds // 60))
    if minutes < 90:
        return f"in about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"in about {hours} hours"
