"""One read of Stripe where one is enough (issue 21: a purchase at 60 ms and at most 3 server-side
Stripe calls): the pay page right after checkout uses checkout's own read, and paths settling one
order at the same moment (the payment's two events, the customer's return) share one read."""

import sys
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from billing import services, views
from billing.models import OrderState
from billing.services import webhook_events
from billing.tokens import order_from_status_token, order_status_token
from tests.billing.helpers import order_with_payment_intent, pay, server_calls, stripe_event_for
from tests.factories import PlanFactory


def stripe_reads(control, method="GET", path="/v1/payment_intents/{}") -> int:
    """Server-side requests (secret key) the emulator has answered on this endpoint so far."""
    return server_calls(control)[f"{method} {path}"]


def checkout(client, email="ada@example.com"):
    return client.post(reverse("billing:checkout"), {
        "email": email, "full_name": "Ada", "nonce": "8b0d3b84-5f5e-4f55-9d8c-2c1c1d1e1f12"})


@pytest.mark.django_db
def test_the_pay_page_right_after_checkout_asks_stripe_nothing(client, emulator_control):
    PlanFactory()
    to_pay = checkout(client).url
    before = stripe_reads(emulator_control)

    page = client.get(to_pay)

    assert page.status_code == 200
    assert page.context["client_secret"].startswith(order_from_status_token(to_pay.split("/")[2])
                                                    .stripe_payment_intent_id + "_secret_")
    assert stripe_reads(emulator_control) == before


@pytest.mark.django_db
def test_the_pay_page_asks_stripe_again_when_reloaded(client, emulator_control):
    PlanFactory()
    to_pay = checkout(client).url
    client.get(to_pay)
    before = stripe_reads(emulator_control)

    client.get(to_pay)

    assert stripe_reads(emulator_control) == before + 1


@pytest.mark.django_db
def test_the_pay_page_of_an_order_paid_since_checkout_sends_the_customer_to_its_status(client, emulator_control):
    PlanFactory()
    to_pay = checkout(client).url
    client.get(to_pay)
    pay(order_from_status_token(to_pay.split("/")[2]))

    page = client.get(to_pay)

    assert page.status_code == 302


@pytest.mark.django_db
def test_what_checkout_read_is_used_only_for_its_own_order(client, emulator_control):
    PlanFactory()
    checkout(client)  # hands its read to its own order's pay page, not visited
    other = order_with_payment_intent()
    before = stripe_reads(emulator_control)

    page = client.get(reverse("billing:pay", kwargs={"token": order_status_token(other)}))

    assert page.status_code == 200
    assert stripe_reads(emulator_control) == before + 1


def _waiting_for_the_answer(thread_id):
    """Whether that thread is inside settle_answer_wait: waiting for the path holding the turn."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == services.settle_answer_wait.__name__:
            return True
        frame = frame.f_back
    return False


def _settle_once_waited_for(order_id):
    """Another path (the payment's other event, say) settling the order once this thread waits for
    its answer; after 10 s without, it settles anyway, and the test's assertions say what went wrong."""
    waiting = threading.get_ident()

    def run():
        try:
            deadline = time.monotonic() + 10
            while not _waiting_for_the_answer(waiting) and time.monotonic() < deadline:
                time.sleep(0.01)
            services.order_settle(order_id=order_id, actor="webhook", reason="the other event")
            services.settle_answered_mark(order_id=order_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_event_for_an_order_another_path_is_settling_waits_for_its_answer_instead_of_asking_stripe(
    emulator_control, monkeypatch
):
    monkeypatch.setattr(webhook_events, "WAIT_FOR_OTHER_SETTLE", 10)  # the machine may be slow; the answer comes
    order = order_with_payment_intent()
    pay(order)
    event = stripe_event_for(order, "payment_intent.succeeded")
    assert services.settle_turn_take(order_id=order.id)  # the other path took the turn
    other = _settle_once_waited_for(order.id)
    before = stripe_reads(emulator_control)

    outcome = services.stripe_event_receive(event=event)
    other.join()

    assert "settled by another path" in outcome
    assert stripe_reads(emulator_control) == before + 1  # the other path's read only
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_an_event_settles_by_itself_when_the_path_holding_the_turn_never_answers(emulator_control, monkeypatch):
    monkeypatch.setattr(webhook_events, "WAIT_FOR_OTHER_SETTLE", 0.2)
    order = order_with_payment_intent()
    pay(order)
    event = stripe_event_for(order, "payment_intent.succeeded")
    assert services.settle_turn_take(order_id=order.id)  # taken by a request that died mid-settle

    services.stripe_event_receive(event=event)

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.events.get(to_state="active").actor == "webhook"


@pytest.mark.django_db(transaction=True)
def test_the_customer_returning_while_the_webhook_settles_gets_its_answer_without_asking_stripe(
    client, emulator_control, monkeypatch
):
    monkeypatch.setattr(views, "WAIT_FOR_OTHER_SETTLE", 10)  # the machine may be slow; the answer comes
    order = order_with_payment_intent()
    pay(order)
    assert services.settle_turn_take(order_id=order.id)  # the webhook is settling
    webhook = _settle_once_waited_for(order.id)
    before = stripe_reads(emulator_control)

    status_url = reverse("billing:status", kwargs={"token": order_status_token(order)})
    page = client.get(status_url + "?redirect_status=succeeded")
    webhook.join()

    assert 'data-status-code="active"' in page.content.decode()
    assert stripe_reads(emulator_control) == before + 1  # the webhook's read only


@pytest.mark.django_db
def test_a_customer_back_from_paying_after_a_declined_card_is_not_shown_the_declines_answer(client, emulator_control):
    order = order_with_payment_intent()
    pay(order, "pm_card_chargeDeclined")
    services.stripe_event_receive(event=stripe_event_for(order, "payment_intent.payment_failed"))  # answered: failed
    pay(order)  # the next card goes through, within the answer's few seconds
    status_url = reverse("billing:status", kwargs={"token": order_status_token(order)})

    page = client.get(status_url, {"payment_intent": order.stripe_payment_intent_id, "redirect_status": "succeeded"})

    assert page.context["order"].state == OrderState.ACTIVE
