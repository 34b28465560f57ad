import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import OrderState
from billing.tokens import order_from_status_token, order_status_token
from outbox.models import OutboundEmail
from tests.billing.helpers import order_with_payment_intent, pay
from tests.factories import OrderFactory, PlanFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db


def status_api(client, order):
    return client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)}))


def paid_order(**fields):
    """An order Stripe took money for: the only kind Find my order emails about."""
    return OrderFactory(state=OrderState.ACTIVE, paid_at=timezone.now(),
                        stripe_payment_intent_id=f"pi_{uuid.uuid4().hex[:24]}", **fields)


def test_the_status_token_does_not_reveal_the_order_id():
    order = OrderFactory()

    token = order_status_token(order)

    assert str(order.id) not in token.split(":")[0] or len(token.split(":")[0]) == 32
    assert order_from_status_token(token) == order


def test_a_tampered_status_token_finds_nothing(client):
    token = order_status_token(OrderFactory())

    response = client.get(reverse("billing:status", kwargs={"token": token[:-2] + "xx"}))

    assert response.status_code == 404


def test_the_status_api_tells_an_unpaid_customer_they_were_not_charged(client):
    body = status_api(client, OrderFactory()).json()

    assert body["code"] == "not_charged"
    assert body["charged"] is False


def test_the_status_api_catches_up_with_stripe_when_the_order_is_behind(client, stripe_emulator):
    order = order_with_payment_intent()
    pay(order)  # money taken at Stripe; nothing on our side has heard of it yet

    body = status_api(client, order).json()

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.events.filter(to_state="active").get().actor == "customer"
    assert body["code"] == "active"
    assert body["charged"] is True


def test_checkout_creates_the_order_and_sends_the_customer_to_pay(client, stripe_emulator):
    PlanFactory()

    response = client.post(reverse("billing:checkout"), {
        "email": "ada@example.com", "full_name": "Ada", "nonce": "8b0d3b84-5f5e-4f55-9d8c-2c1c1d1e1f10"})

    assert response.status_code == 302
    order = order_from_status_token(response.url.split("/")[2])
    assert order.email == "ada@example.com"
    assert order.stripe_payment_intent_id


def test_checkout_says_nothing_was_charged_when_stripe_cannot_be_reached(client, stripe_emulator,
                                                                        emulator_control):
    PlanFactory()
    emulator_control.fail_next(method="POST", path="/v1/", count=10, status=500)

    response = client.post(reverse("billing:checkout"), {
        "email": "ada@example.com", "nonce": "8b0d3b84-5f5e-4f55-9d8c-2c1c1d1e1f11"})

    assert response.status_code == 200
    assert response.context["setup_failed"] is True


def test_the_pay_page_of_a_paid_order_sends_the_customer_to_its_status(client, stripe_emulator):
    order = order_with_payment_intent()
    pay(order)
    status_api(client, order)

    response = client.get(reverse("billing:pay", kwargs={"token": order_status_token(order)}))

    assert response.status_code == 302
    assert response.url == reverse("billing:status", kwargs={"token": order_status_token(order)})


def test_order_lookup_answers_the_same_whether_or_not_the_address_has_orders(client):
    paid_order(email="known@example.com")

    known = client.post(reverse("billing:lookup"), {"email": "known@example.com"})
    unknown = client.post(reverse("billing:lookup"), {"email": "nobody@example.com"})

    assert known.content == unknown.content


def test_order_lookup_emails_the_status_link_only_to_the_address_on_the_order(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order(email="known@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("billing:lookup"), {"email": "Known@Example.com"})

    assert [m.to for m in mailoutbox] == [["known@example.com"]]
    assert order_status_token(order) in mailoutbox[0].body


def test_order_lookup_with_card_digits_only_matches_that_card():
    from billing import services

    paid_order(email="known@example.com", card_last4="4242")

    assert services.order_status_links_send(email="known@example.com", card_last4="0005") == 0
    assert services.order_status_links_send(email="known@example.com", card_last4="4242") == 1


def test_order_lookup_stops_sending_after_three_requests_an_hour_for_one_address(client):
    paid_order(email="known@example.com")
    counting_afresh(rate="3/h", value="known@example.com")

    for _ in range(5):
        client.post(reverse("billing:lookup"), {"email": "known@example.com"})

    assert OutboundEmail.objects.filter(kind="status_link").count() == 3


def test_the_status_page_shows_the_truth_without_javascript(client, stripe_emulator):
    order = order_with_payment_intent()
    pay(order)

    response = client.get(reverse("billing:status", kwargs={"token": order_status_token(order)})
                          + "?payment_intent=x&redirect_status=succeeded")

    assert 'data-status-code="active"' in response.content.decode()


def test_submitting_the_checkout_form_twice_makes_one_order_and_one_payment(client, stripe_emulator):
    import stripe

    from billing.models import Order

    PlanFactory()
    form = {"email": "ada@example.com", "nonce": "8b0d3b84-5f5e-4f55-9d8c-2c1c1d1e1f12"}

    first = client.post(reverse("billing:checkout"), form)
    second = client.post(reverse("billing:checkout"), form)

    assert first.url == second.url
    assert Order.objects.count() == 1
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_a_disputed_order_is_explained_without_blame():
    from billing.selectors import order_customer_status

    status = order_customer_status(OrderFactory(state=OrderState.DISPUTED))

    assert status.charged is True
    assert "dispute" in status.message
    assert "access carries on" in status.message
