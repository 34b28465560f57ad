"""What the Stripe webhook endpoint takes, refuses, and does in the request."""

import json
import uuid

import pytest
import stripe
from django.test import AsyncRequestFactory
from django.urls import reverse

from billing.models import OrderState
from billing.services import stripe_webhook_endpoint_ensure
from billing.webhooks import WEBHOOK_MAX_BODY_BYTES, stripe_webhook
from tests.billing.helpers import paid_order, stripe_event_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(settings):
    return stripe_webhook_endpoint_ensure(secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID,
                                          url="http://testserver/", livemode=False)


def webhook_url(webhook_uuid):
    return reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": webhook_uuid})


def signed(payload: bytes, secret: str) -> dict:
    """Headers as Stripe sends them: the signature is over the exact bytes of the body."""
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload.decode(), secret)}


def event_body(order, size: int | None = None) -> bytes:
    """The order's real payment event, padded with whitespace (still valid JSON) to `size` bytes."""
    body = json.dumps(stripe_event_for(order, "payment_intent.succeeded")).encode()
    return body + b" " * (size - len(body)) if size else body


def post(client, endpoint, payload, **extra):
    return client.post(webhook_url(endpoint.djstripe_uuid), payload, content_type="application/json",
                       headers=signed(payload, endpoint.secret), **extra)


def test_a_signed_payment_event_settles_the_order(client, endpoint, stripe_emulator):
    order = paid_order()

    response = post(client, endpoint, event_body(order))

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE


def test_an_event_padded_to_exactly_the_limit_is_taken(client, endpoint, stripe_emulator):
    order = paid_order()

    response = post(client, endpoint, event_body(order, size=WEBHOOK_MAX_BODY_BYTES))

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE


def test_an_oversized_signed_event_gets_413_and_moves_nothing(client, endpoint, stripe_emulator):
    order = paid_order()

    response = post(client, endpoint, event_body(order, size=WEBHOOK_MAX_BODY_BYTES + 1))

    assert response.status_code == 413
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_body_longer_than_its_small_content_length_gets_413_and_moves_nothing(endpoint, stripe_emulator):
    # Under ASGI, Django's request stream is everything the server received, not what the
    # Content-Length header claimed; an understated header must not let a large body through.
    order = paid_order()
    payload = event_body(order, size=WEBHOOK_MAX_BODY_BYTES + 1)
    request = AsyncRequestFactory().post(webhook_url(endpoint.djstripe_uuid), payload,
                                         content_type="application/json", headers=signed(payload, endpoint.secret))
    request.META["CONTENT_LENGTH"] = "100"

    response = stripe_webhook(request, uuid=endpoint.djstripe_uuid)

    assert response.status_code == 413
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_malformed_content_length_gets_400_and_moves_nothing(client, endpoint, stripe_emulator):
    order = paid_order()

    response = post(client, endpoint, event_body(order), CONTENT_LENGTH="lots")

    assert response.status_code == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_post_to_an_unknown_endpoint_gets_404_and_moves_nothing(client, endpoint, stripe_emulator):
    order = paid_order()
    payload = event_body(order)

    response = client.post(webhook_url(uuid.uuid4()), payload, content_type="application/json",
                           headers=signed(payload, endpoint.secret))

    assert response.status_code == 404
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_signed_body_that_is_not_an_event_gets_400(client, endpoint):
    response = post(client, endpoint, b'{"id": "evt_1", "object": "event"}')

    assert response.status_code == 400


def test_an_event_type_backstop_does_not_use_is_answered_and_moves_nothing(client, endpoint, stripe_emulator):
    order = paid_order()  # paid at Stripe, not settled here yet: any settle would activate it

    response = post(client, endpoint, json.dumps(stripe_event_for(order, "payment_intent.created")).encode())

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
