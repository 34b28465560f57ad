import pytest
from django.urls import reverse

from billing.models import Order, OrderState
from tests.billing.helpers import paid_order
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def support_client(client):
    client.force_login(StaffFactory(is_superuser=True, email="kim@backstop.localhost"))
    return client


def test_support_finds_an_order_by_the_last_four_digits_of_the_card(support_client, stripe_emulator):
    from billing import services

    order = services.order_settle(order_id=paid_order().id, actor="webhook")

    page = support_client.get(reverse("admin:billing_order_changelist"), {"q": "4242"})

    assert order.reference in page.content.decode()


def test_checking_with_stripe_from_the_console_finishes_the_order_as_that_support_person(
    support_client, stripe_emulator
):
    order = paid_order()

    support_client.post(reverse("admin:billing_order_changelist"),
                        {"action": "settle_with_stripe", "_selected_action": [order.pk]})

    order = Order.objects.get(pk=order.pk)
    assert order.state == OrderState.ACTIVE
    assert order.events.get(to_state="active").actor == "support:kim@backstop.localhost"


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1e999999", "-sNaN"])
def test_a_refund_amount_that_is_not_a_number_of_dollars_is_asked_for_again(support_client, stripe_emulator, amount):
    import uuid

    import stripe

    from billing import services

    order = services.order_settle(order_id=paid_order().id, actor="webhook")

    response = support_client.post(reverse("admin:billing_order_refund", args=[order.pk]), {
        "key": str(uuid.uuid4()), "amount": amount, "confirmed_amount": "24900", "reason": "Asked by email"})

    assert response.status_code == 200
    assert "Enter an amount such as 249.00" in response.content.decode()
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data
