"""The Stripe webhook endpoint, fed signed (with the real secret) and unsigned events of any shape.

A signed event is Stripe's word only about which order to look at: settle reads the payment from
Stripe. So whatever the event says, the answer is 200 (taken), 400 (not Stripe's shape) or 503
(Stripe unreachable), and a refused one writes nothing.
"""

import copy
import hashlib
import hmac
import json
import time

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Order, OrderEvent, OrderState
from billing.services import stripe_webhook_endpoint_ensure
from billing.stripe_events import STRIPE_EVENTS_USED
from outbox.models import OutboundEmail
from tests.billing.helpers import paid_order, stripe_event_for
from tests.fuzz.conftest import assert_clean_answer, browser
from tests.fuzz.strategies import any_text, hostile_text, json_values

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


@pytest.fixture
def endpoint(settings):
    return stripe_webhook_endpoint_ensure(secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID,
                                          url="http://testserver/", livemode=False)


@pytest.fixture
def real_event(stripe_emulator):
    order = paid_order()
    return order, stripe_event_for(order, "payment_intent.succeeded")


def post(endpoint, payload: bytes, signature: str | None):
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return browser().post(
        reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid}), payload,
        content_type="application/json", headers=headers)


def signed(endpoint, payload: bytes) -> str:
    """Stripe's scheme (HMAC-SHA256 of "<t>.<body>" with the endpoint's secret), over any bytes."""
    timestamp = int(time.time())
    mac = hmac.new(endpoint.secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def rows():
    return (OrderEvent.objects.count(), OutboundEmail.objects.count(),
            list(Order.objects.order_by("id").values_list("state", flat=True)))


# Where a hostile value goes in an otherwise real event.
PATHS = [("id",), ("type",), ("created",), ("data",), ("data", "object"), ("data", "object", "id"),
         ("data", "object", "object"), ("data", "object", "metadata"), ("data", "object", "metadata", "reference"),
         ("data", "object", "payment_intent"), ("data", "object", "status"), ("data", "object", "latest_charge"),
         ("livemode",), ("api_version",)]


def with_value(event, path, value, *, delete=False):
    event = copy.deepcopy(event)
    target = event
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    if delete:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return event


created_times = st.one_of(st.integers(), st.integers(min_value=-DAY * 400, max_value=DAY * 400).map(
    lambda offset: int(time.time()) + offset))


@given(path=st.sampled_from(PATHS), value=json_values, delete=st.booleans(),
       event_type=st.one_of(st.sampled_from(STRIPE_EVENTS_USED), hostile_text), created=created_times)
def test_a_signed_event_of_any_shape_gets_a_clear_answer_and_a_refused_one_writes_nothing(
    endpoint, real_event, path, value, delete, event_type, created
):
    _order, event = real_event
    event = with_value({**event, "type": event_type, "created": created}, path, value, delete=delete)
    payload = json.dumps(event).encode()
    before = rows()

    response = assert_clean_answer(post(endpoint, payload, signed(endpoint, payload)))

    assert response.status_code in (200, 400, 413, 503)
    if response.status_code != 200:
        assert rows() == before


@given(event=json_values)
def test_a_signed_body_of_any_json_gets_a_clear_answer(endpoint, real_event, event):
    payload = json.dumps(event).encode()
    before = rows()

    response = assert_clean_answer(post(endpoint, payload, signed(endpoint, payload)))

    assert response.status_code in (200, 400)
    assert rows() == before  # none of these names our order


@given(payload=st.one_of(st.binary(max_size=2000), any_text.map(str.encode)))
def test_a_signed_body_that_is_not_json_is_refused(endpoint, real_event, payload):
    before = rows()

    response = assert_clean_answer(post(endpoint, payload, signed(endpoint, payload)))

    assert response.status_code == 400
    assert rows() == before


@given(signature=st.one_of(st.none(), hostile_text, st.just("t=1,v1=00"),
                           st.integers().map(lambda t: f"t={t},v1={'0' * 64}")))
def test_an_unsigned_or_forged_delivery_of_a_real_event_moves_nothing(endpoint, real_event, signature):
    order, event = real_event
    payload = json.dumps(event).encode()

    response = assert_clean_answer(post(endpoint, payload, signature))

    assert response.status_code == 400
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
