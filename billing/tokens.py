"""Signed links for customers. Django's signing (HMAC with SECRET_KEY), not a home-made scheme."""

import uuid

from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

from billing.models import Order
from config.queries import by_unique_key

_status_signer = signing.Signer(salt="billing.order-status")


def order_status_token(order: Order) -> str:
    # The public id is random, so the token reveals nothing about the row id or order volume;
    # the signature means a typo or a guessed uuid is rejected before touching the database.
    return _status_signer.sign(order.public_id.hex)


def order_from_status_token(token: str) -> Order | None:
    try:
        public_id = uuid.UUID(hex=_status_signer.unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    # Its plan for every page, its account for those that ask whose it is.
    return by_unique_key(Order.objects.select_related("plan", "user").filter(public_id=public_id))


# The Renew link in reminder emails and on the account page: it proves the holder reads the
# customer's inbox, so checkout may prefill the address and say what the plan runs until. It
# expires, because forwarded emails live for ever.
_renew_signer = signing.TimestampSigner(salt="billing.renew")
RENEW_LINK_MAX_AGE = 60 * 60 * 24 * 120


def renew_token(user) -> str:
    return _renew_signer.sign(f"{user.pk}:{user.email}")


def renew_path(user) -> str:
    """Checkout's path with this customer's Renew link. Encoded: the token carries the address, and
    a "+" in it must not arrive as a space."""
    return reverse("billing:checkout") + "?" + urlencode({"renew": renew_token(user)})


def user_from_renew_token(token: str):
    """The customer a Renew link was made for, or None if it is broken, expired or their address
    has changed since (the link then belongs to an address that is no longer theirs)."""
    try:
        pk, email = _renew_signer.unsign(token, max_age=RENEW_LINK_MAX_AGE).split(":", 1)
    except (signing.BadSignature, ValueError):
        return None
    return get_user_model().objects.filter(pk=pk, email=email, is_active=True, is_staff=False).first()
