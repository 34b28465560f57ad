"""Signed links for customers. Django's signing (HMAC with SECRET_KEY), not a home-made scheme."""

import uuid

from django.core import signing

from billing.models import Order

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
    return Order.objects.select_related("plan").filter(public_id=public_id).first()
