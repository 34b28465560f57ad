"""The console's Accept and Extend forms own their checks: a person who leaves something out is
told what, on the case, and nothing is done."""

import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from billing import services as billing_services
from billing.models import Order, OrderState
from support import selectors
from tests.billing.helpers import paid_order
from tests.support.test_case_page import active_order, case_url, staff

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("days", ["", "abc", "0", "367", "-5", "2.5"])
def test_extend_by_what_is_not_1_to_366_whole_days_is_asked_for_again_and_extends_nothing(
    client, stripe_emulator, days
):
    order = active_order()
    before = order.entitlement.ends_at
    staff(client)

    response = client.post(case_url(order, "extend"), {"key": str(uuid.uuid4()), "days": days, "reason": "Outage",
                                                       "seen": selectors.order_case_version(order.id)})

    assert messages_of(response) == ["Extend by 1 to 366 days."]
    assert Order.objects.get(pk=order.pk).entitlement.ends_at == before


def test_extend_without_a_reason_asks_for_one(client, stripe_emulator):
    order = active_order()
    staff(client)

    response = client.post(case_url(order, "extend"), {"key": str(uuid.uuid4()), "days": "30", "reason": "  ",
                                                       "seen": selectors.order_case_version(order.id)})

    assert messages_of(response) == ["Say why, for the customer's history."]


def test_accept_without_a_reason_asks_for_one_and_accepts_nothing(client, stripe_emulator):
    order = paid_order(amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    order = billing_services.order_settle(order_id=order.id, actor="webhook")
    staff(client)

    response = client.post(reverse("admin:billing_order_accept", args=[order.pk]), {
        "key": str(uuid.uuid4()), "reason": " ", "seen": selectors.order_case_version(order.id)})

    assert messages_of(response) == [
        f"{order.reference}: Say why the amount Stripe took is accepted, for the order's history."]
    assert Order.objects.get(pk=order.pk).state == OrderState.NEEDS_REVIEW
