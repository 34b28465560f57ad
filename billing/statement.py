"""What a card payment prints on the customer's bank statement: the Stripe account's own prefix
(set in Stripe's Dashboard, read from GET /v1/account), never a word written here."""

import logging
import re
from datetime import timedelta

from django.core.cache import cache

from billing import stripe_api

logger = logging.getLogger(__name__)

CACHE_KEY = "billing:stripe-statement-prefix"
# A prefix is changed by hand in the Dashboard, rarely; a day-old one is read again the next day
# (or at once with `manage.py stripe_statement_prefix`).
CACHE_FOR = timedelta(days=1)
# Stripe unreachable: asked again after this, not on every search.
RETRY_AFTER = timedelta(minutes=5)


def statement_prefix(*, ask_stripe: bool = True) -> str | None:
    """The account's statement prefix ("ACME"), from the cache or (with `ask_stripe`) from Stripe;
    None when it is not known (a statement line still reads "<prefix>* <code>")."""
    prefix = cache.get(CACHE_KEY)
    if prefix is None and ask_stripe:
        prefix = statement_prefix_refresh()
    return prefix or None


def statement_prefix_refresh() -> str:
    """Read the prefix from Stripe's account settings and keep it for a day ("" if Stripe failed)."""
    try:
        account = stripe_api.account_retrieve()
    except stripe_api.StripeError as exc:
        logger.warning("Could not read the statement prefix from Stripe's account: %s", exc)
        cache.set(CACHE_KEY, "", RETRY_AFTER.total_seconds())
        return ""
    prefix = _prefix_of(account.get("settings") or {})
    cache.set(CACHE_KEY, prefix, CACHE_FOR.total_seconds())
    return prefix


def _prefix_of(account_settings) -> str:
    # Stripe prints card_payments.statement_descriptor_prefix before a charge's suffix; an account
    # without one gets a shortened payments.statement_descriptor there instead.
    card = account_settings.get("card_payments") or {}
    payments = account_settings.get("payments") or {}
    prefix = card.get("statement_descriptor_prefix") or (payments.get("statement_descriptor") or "")[:10]
    return prefix.strip().upper()


def statement_code(text: str, prefix: str | None) -> str:
    """The letters and digits of a statement line without its prefix: "ACME* 7F3K9QX2" and
    "acme 7f3k9qx2" both give "7F3K9QX2"; a line with any prefix before its "*" gives what follows."""
    upper = text.strip().upper()
    if "*" in upper:
        upper = upper.rsplit("*", 1)[1]
    compact = re.sub(r"[^0-9A-Z]", "", upper)
    compact_prefix = re.sub(r"[^0-9A-Z]", "", (prefix or "").upper())
    return compact.removeprefix(compact_prefix) if compact_prefix else compact
