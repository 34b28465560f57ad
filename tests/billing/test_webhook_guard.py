"""What reaches dj-stripe's webhook view, which stores every body it is given before checking it."""

import json
import time
import uuid

import pytest
import stripe
from django.test import AsyncRequestFactory
from django.urls import reverse
from djstripe.models import WebhookEventTrigger

from billing.models import OrderState
from billing.services import stripe_webhook_endpoint_ensure
from billing.webhook_guard import WEBHOOK_MAX_BODY_BYTES, stripe_webhook
from tests.billing.helpers import order_with_payment_intent, pay


@pytest.fixture
def endpoint(settings):
    return stripe_webhook_endpoint_ensure(secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID,
                                          url="http://testserver/", livemode=False)


def webhook_url(webhook_uuid):
    return reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": webhook_uuid})


def signed(payload: bytes, secret: str) -> dict:
    """Headers as Stripe sends them: the signature is over the exact bytes of the body."""
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload.decode(), secret)}


def oversized_event() -> bytes:
    body = json.dumps({"id": "evt_big", "object": "event", "padding": "x" * WEBHOOK_MAX_BODY_BYTES})
    return body.encode()


@pytest.mark.django_db
def test_an_oversized_body_gets_413_and_leaves_no_trigger_row(client, endpoint):
    payload = oversized_event()

    response = client.post(webhook_url(endpoint.djstripe_uuid), payload, content_type="application/json",
                           headers=signed(payload, endpoint.secret))

    assert response.status_code == 413
    assert not WebhookEventTrigger.objects.exists()


@pytest.mark.django_db
def test_a_body_longer_than_its_small_content_length_gets_413_and_leaves_no_trigger_row(endpoint):
    # Under ASGI, Django's request stream is everything the server received, not what the
    # Content-Length header claimed; an understated header must not let a large body through.
    payload = oversized_event()
    request = AsyncRequestFactory().post(webhook_url(endpoint.djstripe_uuid), payload,
                                         content_type="application/json", headers=signed(payload, endpoint.secret))
    request.META["CONTENT_LENGTH"] = "100"

    response = stripe_webhook(request, uuid=endpoint.djstripe_uuid)

    assert response.status_code == 413
    assert not WebhookEventTrigger.objects.exists()


@pytest.mark.django_db
def test_a_malformed_content_length_gets_400_and_leaves_no_trigger_row(client, endpoint):
    payload = b'{"id": "evt_1", "object": "event"}'

    response = client.post(webhook_url(endpoint.djstripe_uuid), payload, content_type="application/json",
                           headers=signed(payload, endpoint.secret), CONTENT_LENGTH="lots")

    assert response.status_code == 400
    assert not WebhookEventTrigger.objects.exists()


@pytest.mark.django_db
def test_a_post_to_an_unknown_webhook_uuid_gets_404_and_leaves_no_trigger_row(client, endpoint):
    payload = b'{"id": "evt_1", "object": "event"}'

    response = client.post(webhook_url(uuid.uuid4()), payload, content_type="application/json",
                           headers=signed(payload, endpoint.secret))

    assert response.status_code == 404
    assert not WebhookEventTrigger.objects.exists()


@pytest.mark.django_db
def test_a_body_at_the_limit_reaches_dj_stripe(client, endpoint):
    # Badly signed on purpose: dj-stripe's answer (400, with its trigger row) proves it got the body.
    payload = b" " * WEBHOOK_MAX_BODY_BYTES

    response = client.post(webhook_url(endpoint.djstripe_uuid), payload, content_type="application/json",
                           headers={"Stripe-Signature": "t=1,v1=0"})

    assert response.status_code == 400
    assert len(WebhookEventTrigger.objects.get().body) == WEBHOOK_MAX_BODY_BYTES


@pytest.mark.django_db(transaction=True)
def test_a_signed_event_from_stripe_still_arrives_and_is_processed(stripe_webhooks_to_live_server, emulator_control):
    order = order_with_payment_intent()

    pay(order)
    emulator_control.wait_for_webhooks()

    deadline = time.monotonic() + 15
    while order.state != OrderState.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.1)
        order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert WebhookEventTrigger.objects.filter(valid=True, processed=True).exists()
