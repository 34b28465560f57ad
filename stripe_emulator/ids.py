"""Stripe-looking identifiers: a type prefix and a random base62 tail."""

import random
import string

_ALPHABET = string.ascii_letters + string.digits
_random = random.SystemRandom()

# Which table an id belongs to, so expand[] and resource lookups can follow any id.
PREFIX_TO_KIND = {
    "acct": "account",
    "cus": "customer",
    "pm": "payment_method",
    "pi": "payment_intent",
    "ch": "charge",
    "re": "refund",
    "txn": "balance_transaction",
    "du": "dispute",
    "evt": "event",
    "we": "webhook_endpoint",
}


def random_string(length: int) -> str:
    return "".join(_random.choices(_ALPHABET, k=length))


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{random_string(length)}"


def kind_of(object_id: str) -> str | None:
    prefix, _, _ = object_id.partition("_")
    return PREFIX_TO_KIND.get(prefix)
