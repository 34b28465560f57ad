"""The address of the client a request came from, when proxies sit in between.

Behind a reverse proxy every request arrives from the proxy (REMOTE_ADDR is 127.0.0.1 behind the
documented nginx), so per-client rate limits would lump every visitor together: one visitor could
use up the limit and switch a page off for everyone. Each trusted proxy appends the address it
received the request from to X-Forwarded-For; anything to the left of those entries was written by
the client and is not believed.

TRUSTED_PROXY_COUNT says how many proxies, ours, stand in front of the app:
- 0 (the default): no proxy, or one we do not trust: REMOTE_ADDR.
- 1 (the documented nginx): the rightmost X-Forwarded-For entry, which nginx appended.
- N: the N-th entry from the right (a load balancer in front of nginx is N=2).
"""

import ipaddress

from django.conf import settings


def _ip(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d; counted per IPv6 /64, every IPv4
    # client in the world would share one counter. Count them as the IPv4 address they are.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_ip(request) -> str:
    """The client's IP address as our own proxies saw it; REMOTE_ADDR when not behind one."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if trusted <= 0:
        return _ip(remote) or remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return _ip(remote) or remote  # not through the proxy at all (a health check on the app's own port)
    # Fewer entries than proxies: every entry there is was written by one of ours; take the first.
    entry = forwarded[-trusted] if len(forwarded) >= trusted else forwarded[0]
    return _ip(entry) or remote
