"""A step of the money path that fails (a named failpoint armed to raise) leaves nothing the next
pass of the nets cannot finish: rolled back where it was inside a transaction, picked up by the
repeat (the webhook's retry, the customer's return, the sweep, the dispatcher) where it was not.

Real PostgreSQL and the emulator; only the failure is injected (config/failpoints.py).
"""

import json
from datetime import timedelta

import pytest
import stripe
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Entitlement
from billing import services
from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderState, ReconcileRun
from billing.reconcile import reconcile_run
from billing.renewals import reminders_send
from config.failpoints import FailpointError
from outbox import services as outbox_services
from outbox.models import OutboundEmail
from tests.billing.helpers import paid_order, stripe_event_for
from tests.factories import OrderFactory, PlanFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
Kind = EmailKind


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.RECONCILE_GRACE = timedelta(0)


def whole(order):
    """Active with one entitlement and one confirmation, sent."""
    order.refresh_from_db()
    emails = list(order.emails.values_list("kind", "status"))
    return (order.state, Entitlement.objects.filter(order=order).count(), emails) == (
        OrderState.ACTIVE, 1, [(Kind.CONFIRMATION, OutboundEmail.Status.SENT)])


def payment_intents_for(order):
    return [pi for pi in stripe.PaymentIntent.list(limit=100).auto_paging_iter()
            if (pi.metadata or {}).get("reference") == order.reference]


# --- checkout ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["checkout.after_customer", "checkout.after_payment_intent_created"])
def test_checkout_failing_between_stripe_calls_makes_one_payment_when_it_is_tried_again(stripe_emulator, arm, point):
    OrderFactory(email="ada@example.com")  # the address ordered before: this order makes its Stripe Customer (0034)
    order = OrderFactory(email="ada@example.com")
    arm(f"{point}=raise")
    with pytest.raises(FailpointError):
        services.order_prepare_payment(order=order)
    arm("")

    services.order_prepare_payment(order=order)

    order.refresh_from_db()
    assert [pi.id for pi in payment_intents_for(order)] == [order.stripe_payment_intent_id]
    # One Stripe customer per address (decision 0015), made once however often checkout is tried.
    assert [c.id for c in stripe.Customer.list(limit=100).auto_paging_iter() if c.email == order.email] == [
        order.stripe_customer_id]


def test_checkout_failing_after_the_order_commits_gives_the_same_order_to_the_same_form(stripe_emulator, arm):
    plan, nonce = PlanFactory(), "5f0c3a64-8d6e-4a4e-9a43-4c1f7b0e2d11"
    arm("checkout.after_order_commit=raise")
    with pytest.raises(FailpointError):
        services.order_create(plan=plan, email="ada@example.com", checkout_nonce=nonce)
    arm("")

    order = services.order_create(plan=plan, email="ada@example.com", checkout_nonce=nonce)

    assert list(Order.objects.values_list("id", flat=True)) == [order.id]


# --- settle -----------------------------------------------------------------------------------------

SETTLE_POINTS = ["settle.after_stripe_read", "settle.after_lock", "settle.after_entitlement",
                 "settle.after_outbox_row", "settle.before_commit"]


@pytest.mark.parametrize("point", SETTLE_POINTS)
def test_a_settle_failing_at_any_step_leaves_nothing_and_the_next_settle_finishes_the_order(
    stripe_emulator, arm, point, django_capture_on_commit_callbacks
):
    order = paid_order()
    arm(f"{point}=raise")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(FailpointError):
        services.order_settle(order_id=order.id, actor="customer")
    order.refresh_from_db()
    assert (order.state, Entitlement.objects.filter(order=order).count(), order.emails.count()) == (
        OrderState.PENDING, 0, 0)
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="customer")

    assert whole(order)


# --- webhook ----------------------------------------------------------------------------------------


def post_event(event, endpoint):
    """Deliver the event signed as Stripe signs it; a 5xx is what Stripe retries."""
    body = json.dumps(event)
    return Client(raise_request_exception=False).post(
        reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid}), body,
        content_type="application/json",
        headers={"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, endpoint.secret)})


@pytest.mark.parametrize("point", ["webhook.after_signature", "webhook.inside_settle"])
def test_a_webhook_failing_answers_500_and_its_redelivery_finishes_the_order(
    stripe_emulator, arm, point, settings, django_capture_on_commit_callbacks
):
    endpoint = services.stripe_webhook_endpoint_ensure(
        secret=settings.STRIPE_WEBHOOK_SECRET, uuid=settings.STRIPE_WEBHOOK_UUID, url="http://testserver/",
        livemode=False)
    order = paid_order()
    event = stripe_event_for(order, "payment_intent.succeeded")
    arm(f"{point}=1*raise")

    with django_capture_on_commit_callbacks(execute=True):
        first = post_event(event, endpoint)
        again = post_event(event, endpoint)  # Stripe retries a 5xx

    assert (first.status_code, again.status_code) == (500, 200)
    assert whole(order)
    assert order.events.get(to_state="active").actor == "webhook"


# --- outbox: the one window we cannot close --------------------------------------------------------


def test_an_email_the_esp_accepted_but_we_never_recorded_is_never_sent_twice_and_goes_to_a_person(
    stripe_emulator, arm, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order()
    arm("outbox.after_esp_accepted=raise")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="customer")  # the send task fails after the ESP took it
    arm("")
    email = order.emails.get()
    assert (email.status, [m.to for m in mailoutbox]) == (OutboundEmail.Status.SENDING, [[order.email]])

    OutboundEmail.objects.filter(pk=email.pk).update(claimed_at=timezone.now() - outbox_services.EMAIL_CLAIM_TIMEOUT)
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.UNCERTAIN
    assert [m.to for m in mailoutbox if order.email in m.to] == [[order.email]]  # the team's alert aside
    assert order.alerts.filter(kind="email").count() == 1


# --- the sweep and adoption ------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["sweep.after_sync_page", "sweep.before_fix"])
def test_a_sweep_failing_is_recorded_and_the_next_sweep_finishes_the_order(
    stripe_emulator, arm, point, django_capture_on_commit_callbacks
):
    order = paid_order()  # charged, every webhook lost, the customer gone
    arm(f"{point}=raise")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError, match="FailpointError"):
        reconcile_run()
    assert ReconcileRun.objects.get().status == ReconcileRun.Status.FAILED
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()

    assert whole(order)
    assert order.events.get(to_state="active").actor == "sweep"


def test_an_adoption_failing_after_the_order_is_recreated_is_finished_by_the_next_sweep(
    stripe_emulator, arm, django_capture_on_commit_callbacks
):
    PlanFactory(code="annual", amount_cents=24900, currency="usd")
    order = paid_order(amount_cents=24900)
    reference = order.reference
    Order.objects.filter(pk=order.pk).delete()  # lost in a restore
    arm("adoption.after_order_recreated=raise")
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
    assert Order.objects.get(reference=reference).state == OrderState.PENDING
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()

    assert whole(Order.objects.get(reference=reference))


# --- refunds and held money --------------------------------------------------------------------------


def test_a_refund_failing_after_stripe_accepted_it_is_recorded_by_the_sweep_and_never_made_twice(
    stripe_emulator, arm, django_capture_on_commit_callbacks
):
    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="customer")
    arm("refund.after_stripe_accepted=raise")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(FailpointError):
        services.order_refund(order_id=order.id, actor="customer", reason="Refund me now")
    arm("")
    Order.objects.filter(pk=order.pk).update(state_changed_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
        services.order_refund(order_id=order.id, actor="customer", reason="Refund me now")  # pressed again

    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1
    assert list(order.emails.values_list("kind", flat=True)) == [Kind.CONFIRMATION, Kind.REFUND]


def test_holding_money_failing_before_the_email_rolls_back_and_the_next_settle_holds_it_and_tells_once(
    stripe_emulator, arm, django_capture_on_commit_callbacks
):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)  # Stripe took another amount
    arm("held_money.after_hold=raise")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(FailpointError):
        services.order_settle(order_id=order.id, actor="webhook")
    order.refresh_from_db()
    assert (order.state, order.held_since) == (OrderState.PENDING, None)
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="webhook")
        services.order_settle(order_id=order.id, actor="sweep")

    order.refresh_from_db()
    assert (order.state, order.held_since is not None) == (OrderState.NEEDS_REVIEW, True)
    assert list(order.emails.values_list("kind", "status")) == [(Kind.PAYMENT_RECEIVED, OutboundEmail.Status.SENT)]


# --- reminders -----------------------------------------------------------------------------------------


def test_reminders_failing_after_the_email_row_send_it_once_and_owe_it_no_second_time(
    stripe_emulator, arm, mailoutbox, django_capture_on_commit_callbacks
):
    user = UserFactory()
    ends_at = timezone.now() + timedelta(days=6)
    order = OrderFactory(user=user, email=user.email, state=OrderState.ACTIVE, paid_at=ends_at - timedelta(days=365))
    Entitlement.objects.create(user=user, order=order, plan=order.plan, starts_at=order.paid_at, ends_at=ends_at)
    arm("reminders.after_email_row=raise")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(FailpointError):
        reminders_send()
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send().counts == {"reminders": 0, "ended": 0, "already_owed": 1}

    assert list(order.emails.values_list("kind", "status")) == [(Kind.RENEWAL_REMINDER, OutboundEmail.Status.SENT)]
    assert len(mailoutbox) == 1


# --- support actions ---------------------------------------------------------------------------------


def test_a_support_extension_failing_after_its_receipt_rolls_back_and_the_same_form_works_again(
    stripe_emulator, arm, django_capture_on_commit_callbacks
):
    from support import selectors as support_selectors
    from support import services as support_services

    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="customer")
    ends_at = Entitlement.objects.get(order=order).ends_at
    staff, key = StaffFactory(), "0c6f9d1e-3b8a-4f53-9a51-4f3b1c2d7e80"
    seen = support_selectors.order_case_version(order.id)
    arm("support.after_receipt=raise")
    with pytest.raises(FailpointError):
        support_services.entitlement_extend(order_id=order.id, user=staff, days=10, reason="outage", key=key,
                                            seen=seen)
    arm("")

    support_services.entitlement_extend(order_id=order.id, user=staff, days=10, reason="outage", key=key, seen=seen)

    assert Entitlement.objects.get(order=order).ends_at == ends_at + timedelta(days=10)


def test_a_support_refund_failing_after_its_receipt_is_done_when_the_same_form_is_sent_again(
    stripe_emulator, arm, django_capture_on_commit_callbacks
):
    from support import selectors as support_selectors
    from support import services as support_services

    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="customer")
    staff, key = StaffFactory(), "7d2e4c1a-5b6f-4e8d-9c0a-1b2c3d4e5f60"
    seen = support_selectors.order_case_version(order.id)
    arm("support.after_receipt=raise")
    with pytest.raises(FailpointError):
        support_services.order_refund_by_support(order_id=order.id, user=staff, key=key, reason="asked", seen=seen)
    arm("")

    with django_capture_on_commit_callbacks(execute=True):
        support_services.order_refund_by_support(order_id=order.id, user=staff, key=key, reason="asked", seen=seen)

    order.refresh_from_db()
    assert order.state in (OrderState.REFUND_PENDING, OrderState.REFUNDED)
