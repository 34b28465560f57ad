"""One way to ask django-ratelimit "is this request over the limit?", counting it as it asks.

Limits are counted per client address (config/client_ip.py, through RATELIMIT_IP_META_KEY) or per
another value such as an email address; django-ratelimit hashes the value into the cache key, so
any length is fine. Each view names its limits as constants beside it.
"""

from django_ratelimit.core import is_ratelimited


def over_limit(request, *, group: str, rate: str, value: str | None = None) -> bool:
    """Count this request against `rate` ("10/h") for its client, or for `value` when given."""
    key = "ip" if value is None else (lambda _group, _request: value)
    return is_ratelimited(request, group=group, key=key, rate=rate, increment=True)
