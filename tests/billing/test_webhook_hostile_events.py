"""Signed events whose contents are not Stripe's: refused with a 400, and nothing written.

Backstop's endpoint (billing/webhooks.py) stores no dj-stripe WebhookEventTrigger row, for events it
takes or refuses: the delivery is in the log line and Stripe's own delivery log. So "nothing
half-written" means no order moved, no order event, no outbox row, no mirror row, no trigger row.
"""

import json
import time

import pytest
import stripe
from django.urls import reverse
from djstripe.models import Event, WebhookEventTrigger

from billing import services
from billing.models import OrderEvent, OrderState
from billing.services import stripe_webhook_endpoint_ensure
from billing.webhooks import EVENT_MAX_SECONDS_AHEAD
from outbox.models import OutboundEmail
from tests.billing.helpers import paid_order, stripe_event_for

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


@pytest.fixture
def endpoint(settings):
    return stripe_webhook_endpoint_ensure(secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID,
                                          url="http://testserver/", livemode=False)


def deliver(client, endpoint, event) -> int:
    payload = json.dumps(event)
    response = client.post(
        reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid}), payload,
        content_type="application/json",
        headers={"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, endpoint.secret)})
    return response.status_code


def written():
    return (OrderEvent.objects.count(), OutboundEmail.objects.count(), Event.objects.count(),
            WebhookEventTrigger.objects.count())


@pytest.fixture
def paid(stripe_emulator):
    order = paid_order()
    return order, stripe_event_for(order, "payment_intent.succeeded")


def test_a_signed_event_dated_a_day_in_the_future_is_refused_and_moves_nothing(client, endpoint, paid):
    order, event = paid
    before = written()

    status = deliver(client, endpoint, {**event, "created": int(time.time()) + DAY})

    assert status == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert written() == before


def test_a_signed_event_a_little_ahead_of_our_clock_is_taken(client, endpoint, paid):
    order, event = paid

    status = deliver(client, endpoint, {**event, "created": int(time.time()) + EVENT_MAX_SECONDS_AHEAD - 60})

    assert status == 200
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE


def test_a_signed_event_created_days_ago_is_taken_as_stripe_retries_for_days(client, endpoint, paid):
    order, event = paid

    status = deliver(client, endpoint, {**event, "created": int(time.time()) - 3 * DAY})

    assert status == 200
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE


def test_a_signed_event_whose_object_is_a_list_is_refused_and_moves_nothing(client, endpoint, paid):
    order, event = paid
    before = written()

    status = deliver(client, endpoint, {**event, "data": {"object": [event["data"]["object"]]}})

    assert status == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert written() == before


@pytest.mark.parametrize("change", [
    {"created": "yesterday"},
    {"created": True},
    {"created": None},
    {"id": 12345},
    {"id": "evt_\x00nul"},
    {"id": "evt_" + "x" * 300},
    {"type": ["payment_intent.succeeded"]},
    {"data": "payment_intent"},
    {"data": None},
    {"data": {}},
])
def test_a_signed_event_of_another_shape_is_refused(client, endpoint, paid, change):
    order, event = paid

    assert deliver(client, endpoint, {**event, **change}) == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


@pytest.mark.parametrize("change", [
    {"id": ["pi_1"]},
    {"id": "pi_\x00"},
    {"metadata": ["reference"]},
    {"metadata": {"reference": {"$ne": ""}}},
    {"metadata": {"reference": "A\x00B"}},
    {"payment_intent": 42},
    {"payment_intent": {"id": 7}},
    {"object": {"payment_intent": True}},
    {"status": ["succeeded"]},
])
def test_a_signed_event_whose_object_has_fields_of_another_type_is_refused(client, endpoint, paid, change):
    order, event = paid
    obj = {**event["data"]["object"], **change}

    assert deliver(client, endpoint, {**event, "data": {"object": obj}}) == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_signed_event_nested_deeper_than_json_can_read_is_refused(client, endpoint, settings):
    payload = '{"id": "evt_1", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(
        reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid}), payload,
        content_type="application/json",
        headers={"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, endpoint.secret)})

    assert response.status_code == 400


def test_a_refund_update_whose_status_stripe_left_null_is_taken(client, endpoint, stripe_emulator, emulator_control):
    # Stripe types Refund.status as Optional[str]: an event may carry a refund without one.
    order = paid_order()
    services.order_settle(order_id=order.id, actor="webhook")
    services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="asked")
    emulator_control.fail_refund(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data[0].id)
    event = stripe_event_for(order, "charge.refund.updated")

    status = deliver(client, endpoint, {**event, "data": {"object": {**event["data"]["object"], "status": None}}})

    assert status == 200
