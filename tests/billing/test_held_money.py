"""Money held without service: the customer is told at once, with a date, and refunded by then."""

from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Order, OrderState
from billing.tokens import order_status_token
from support.models import Alert
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db


def held_order(**fields):
    """Charged for another amount than the order says: settle refuses and holds the money."""
    order = paid_order(**fields)
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)
    return services.order_settle(order_id=order.id, actor="webhook")


def sweep(settings):
    settings.RECONCILE_GRACE = timedelta(0)
    call_command("reconcile", stdout=StringIO(), stderr=StringIO())


def test_held_money_gets_a_refund_deadline_from_the_setting(stripe_emulator, settings):
    settings.HELD_MONEY_DEADLINE = timedelta(hours=6)

    order = held_order()

    assert order.state == OrderState.NEEDS_REVIEW
    assert order.refund_deadline_at - order.held_since == timedelta(hours=6)


def test_the_customer_is_told_at_once_that_we_have_their_payment_and_the_refund_date(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = held_order(email="ada@example.com")

    (message,) = [m for m in mailoutbox if m.to == ["ada@example.com"]]
    assert "We received your payment of $249.00" in message.body  # what Stripe took, not the order's $199.00
    deadline = timezone.localtime(order.refund_deadline_at)
    assert f"{deadline:%B %-d at %H:%M}" in message.body
    assert "we refund you in full automatically" in message.body


def test_the_customer_is_told_only_once_however_often_settle_runs(stripe_emulator):
    order = held_order()

    services.order_settle(order_id=order.id, actor="sweep")
    services.order_settle(order_id=order.id, actor="customer")

    assert order.emails.filter(kind="payment_received").count() == 1


def test_the_team_is_alerted_once_per_held_order_by_email(
    stripe_emulator, settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    with django_capture_on_commit_callbacks(execute=True):
        order = held_order()
        services.order_settle(order_id=order.id, actor="sweep")

    alert = Alert.objects.get(order=order)
    assert alert.kind == "held_money"
    assert alert.notified_at is not None
    team_mail = [m for m in mail.outbox if m.to == ["team@backstop.localhost"]]
    assert len(team_mail) == 1
    assert order.reference in team_mail[0].subject


def test_at_the_deadline_the_money_is_refunded_automatically_and_the_email_says_why(
    stripe_emulator, settings, mailoutbox, django_capture_on_commit_callbacks
):
    order = held_order()
    Order.objects.filter(pk=order.pk).update(refund_deadline_at=timezone.now() - timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        sweep(settings)

    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert order.events.get(to_state="refund_pending").actor == "sweep"
    refund_mail = [m for m in mailoutbox if m.subject == f"Your refund for {order.reference}"]
    assert "as promised, we refunded you automatically" in refund_mail[0].body


def test_before_the_deadline_held_money_stays_with_a_person(stripe_emulator, settings):
    order = held_order()

    sweep(settings)

    order.refresh_from_db()
    assert order.state == OrderState.NEEDS_REVIEW


def test_the_status_page_offers_refund_me_now_while_money_is_held(stripe_emulator, client):
    order = held_order()

    page = client.get(reverse("billing:status", kwargs={"token": order_status_token(order)}))

    assert b"Payment received" in page.content
    assert b"Refund me now" in page.content
    assert b'id="status-refund" hidden' not in page.content


def test_refund_me_now_refunds_the_customer_in_full(stripe_emulator, client):
    order = held_order()
    token = order_status_token(order)

    response = client.post(reverse("billing:refund-now", kwargs={"token": token}))

    order.refresh_from_db()
    assert response.status_code == 302
    assert order.state == OrderState.REFUNDED
    assert order.events.get(to_state="refund_pending").actor == "customer"


def test_refund_me_now_does_nothing_to_an_active_order(stripe_emulator, client):
    order = services.order_settle(order_id=paid_order().id, actor="webhook")

    client.post(reverse("billing:refund-now", kwargs={"token": order_status_token(order)}))

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data


def test_refund_me_now_only_answers_a_post(stripe_emulator, client):
    order = held_order()

    response = client.get(reverse("billing:refund-now", kwargs={"token": order_status_token(order)}))

    assert response.status_code == 405


def test_when_stripe_fails_during_the_sweep_the_customer_still_hears_we_have_their_payment(
    stripe_emulator, emulator_control, settings, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order()
    # The sweep's list calls work; the PaymentIntent retrieve that settle needs fails every time.
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception, match="step"):
        sweep(settings)

    order.refresh_from_db()
    assert order.state == OrderState.PENDING  # the next settle can still finish it on its own
    assert order.refund_deadline_at is not None
    assert [m.subject for m in mailoutbox if m.to == [order.email]] == [
        f"We have your payment — we're finishing your order {order.reference}"]


def test_an_order_finished_after_all_no_longer_holds_money(stripe_emulator, settings, emulator_control):
    order = paid_order()
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)
    with pytest.raises(Exception, match="step"):
        sweep(settings)
    emulator_control.clear_faults()

    order = services.order_settle(order_id=order.id, actor="customer")

    assert order.state == OrderState.ACTIVE
    assert (order.held_since, order.refund_deadline_at) == (None, None)
    assert Alert.objects.get(order=order).resolved_at is not None


def test_a_status_page_that_cannot_reach_stripe_but_sees_the_payment_mirrored_says_payment_received(
    stripe_emulator, emulator_control, client, mailoutbox, django_capture_on_commit_callbacks
):
    from billing.mirror import stripe_mirror_sync

    order = paid_order()
    stripe_mirror_sync()  # the webhook's mirror has the charge; the settle task never ran
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10, status=500)

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)}))

    assert page.json()["headline"] == "Payment received — we're finishing your order"
    assert page.json()["charged"] is True
    assert [m.subject for m in mailoutbox if m.to == [order.email]] == [
        f"We have your payment — we're finishing your order {order.reference}"]
