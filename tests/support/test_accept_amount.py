"""Issue 20, item 6: money held because Stripe took another amount ($248 for a $249 order).
Support can Accept what Stripe took (the plan is granted for it, with who and why, permissioned
like Refund) or Refund; the diagnosis and Recover name only what will work."""

import uuid
from io import StringIO

import pytest
import stripe
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Entitlement
from billing import services
from billing.errors import BillingError
from billing.models import Order, OrderState
from support import selectors
from support.models import Alert
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db


def held_for_248():
    """Stripe took $248.00 for an order that asked $249.00: held for review, the customer told."""
    order = paid_order(email="bo@example.com", amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    return services.order_settle(order_id=order.id, actor="webhook")


def staff(client, *, refunds):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", refunds=refunds,
                 stdout=StringIO())
    assert client.login(email="ana@backstop.localhost", password="a long pass phrase 42")
    return client


def accept(client, order, reason="A discount we gave by phone"):
    return client.post(reverse("admin:billing_order_accept", args=[order.pk]), {
        "key": str(uuid.uuid4()), "reason": reason, "seen": selectors.order_case_version(order.id)})


def test_the_diagnosis_of_a_different_amount_names_accept_or_refund_and_not_recover(stripe_emulator):
    order = held_for_248()

    diagnosis = selectors.order_diagnosis(order)

    assert diagnosis.action == "accept"
    assert diagnosis.action_label == "Accept $248.00"
    assert "Accept $248.00 (the plan is granted for it) or Refund." in diagnosis.summary
    assert "Fix the cause" not in diagnosis.summary


def test_accept_grants_the_plan_for_what_stripe_took_with_who_and_why(stripe_emulator):
    order = held_for_248()

    order = services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost",
                                         reason="A discount we gave by phone")

    assert order.state == OrderState.ACTIVE
    assert (order.amount_cents, order.paid_cents, order.amounts_differ) == (24800, 24800, False)
    assert order.held_since is None
    assert order.refund_deadline_at is None
    assert Entitlement.objects.filter(order=order, revoked_at__isnull=True).count() == 1
    accepted = order.events.get(to_state=OrderState.PAID)
    assert accepted.actor == "support:ana@backstop.localhost"
    assert accepted.reason == ("Accepted $248.00 as Stripe took it for the $249.00 order: "
                               "A discount we gave by phone")


def test_accept_owes_one_confirmation_and_clears_the_held_money_alert(stripe_emulator):
    order = held_for_248()

    for _ in range(2):
        services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost", reason="ok")

    assert order.emails.filter(kind="confirmation").count() == 1
    assert not Alert.objects.filter(order=order, kind="held_money", resolved_at__isnull=True).exists()


def test_settle_after_accept_keeps_the_order_active(stripe_emulator):
    order = held_for_248()
    services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost", reason="ok")

    order = services.order_settle(order_id=order.id, actor="sweep")

    assert order.state == OrderState.ACTIVE


def test_accept_needs_a_reason(stripe_emulator):
    order = held_for_248()

    with pytest.raises(BillingError, match="Say why"):
        services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost", reason=" ")


def test_accept_refuses_an_order_whose_amount_matches(stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="webhook")

    with pytest.raises(BillingError, match="Accept is for an amount Stripe took differently"):
        services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost", reason="ok")


def test_accept_refuses_a_payment_refunded_meanwhile(stripe_emulator):
    order = held_for_248()
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=100)

    with pytest.raises(BillingError, match="refunded or disputed"):
        services.order_accept_amount(order_id=order.id, actor="support:ana@backstop.localhost", reason="ok")


def test_the_console_accept_button_activates_the_order_as_that_person(client, stripe_emulator):
    order = held_for_248()
    staff(client, refunds=True)

    page = client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    response = accept(client, order)

    assert 'id="case-accept">Accept $248.00</button>' in page
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.events.get(to_state=OrderState.ACTIVE).actor == "support:ana@backstop.localhost"
    assert any("Accepted $248.00" in str(m) for m in get_messages(response.wsgi_request))


def test_accept_is_permissioned_like_refund(client, stripe_emulator):
    order = held_for_248()
    staff(client, refunds=False)

    page = client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    response = accept(client, order)

    assert 'id="case-accept"' not in page
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.state == OrderState.NEEDS_REVIEW


def test_the_same_accept_form_sent_twice_accepts_once(client, stripe_emulator):
    order = held_for_248()
    staff(client, refunds=True)
    form = {"key": str(uuid.uuid4()), "reason": "ok", "seen": selectors.order_case_version(order.id)}
    url = reverse("admin:billing_order_accept", args=[order.pk])

    client.post(url, form)
    response = client.post(url, form)

    assert order.events.filter(to_state=OrderState.ACTIVE).count() == 1
    message = [str(m) for m in get_messages(response.wsgi_request)][-1]
    assert message.startswith(("That accept was already done", "Nothing was done"))


def test_accept_is_not_offered_where_the_amount_matches(client, stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="webhook")
    staff(client, refunds=True)

    page = client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert 'id="case-accept"' not in page
