"""The Stripe-Version header, as Stripe reads it.

Stripe answers each request in the version the header names (or the account's default without
one) and refuses a version it never released with a 400. The emulator renders every version the
same way, its own; it refuses what Stripe would refuse: a malformed version, or a date after the
newest version it knows.
"""

import datetime
import re

from .errors import StripeError

# YYYY-MM-DD, since 2024 followed by the release's name (2026-08-26.dahlia), optionally with beta
# flags after a semicolon ("2026-08-26.dahlia; some_beta=v1").
_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.[a-z]+)?(?:;\s*[a-z0-9_]+=[a-z0-9_]+)*")


def invalid_version(version: str) -> StripeError:
    return StripeError(400, f"Invalid Stripe API version: {version}", saved=False)


def check(version: str | None, newest: str) -> None:
    """Raise Stripe's error for a version Stripe never released (None: the account's default)."""
    if version is None:
        return
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise invalid_version(version)
    try:
        released = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        raise invalid_version(version) from None
    if released.isoformat() > newest[:10]:
        raise invalid_version(version)
