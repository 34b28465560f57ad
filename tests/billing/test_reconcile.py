"""The sweep (`manage.py reconcile`): the safety net that finds every paid order on its own.

Stripe is the local emulator; no webhook endpoint is registered in these tests, so every webhook
is lost, as in the bug report. The sweep has only Stripe's list APIs and our database.
"""

import threading
from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import CommandError, call_command
from django.utils import timezone
from djstripe import models as djstripe_models

from accounts.models import Entitlement
from billing import locks, reconcile
from billing.models import Lease, Order, OrderEvent, OrderState, Plan, ReconcileRun, StripeSyncCursor
from outbox.models import OutboundEmail
from support.models import Alert
from tests.billing.helpers import at_once, order_with_payment_intent, paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.RECONCILE_GRACE = timedelta(0)


def sweep(*args):
    out = StringIO()
    call_command("reconcile", *args, stdout=out, stderr=out)
    return out.getvalue()


def backstop_payment_without_order(*, amount=24900, reference="BK-7F3K-9QX2", email="lost@example.com", plan="annual"):
    """A payment checkout made at Stripe for an order our database no longer has."""
    metadata = {"order_id": "999999", "reference": reference, "email": email, "plan": plan}
    customer = stripe.Customer.create(email=email, metadata=metadata)
    return stripe.PaymentIntent.create(amount=amount, currency="usd", customer=customer.id, confirm=True,
                                       payment_method="pm_card_visa", payment_method_types=["card"],
                                       metadata=metadata)


def test_a_charged_order_whose_webhooks_were_all_lost_is_activated_by_the_sweep_with_one_confirmation(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order(email="ada@example.com")  # charged; nobody settles, no webhook arrives

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert Entitlement.objects.filter(order=order).count() == 1
    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert order.events.get(to_state="active").actor == "sweep"


def test_the_sweep_leaves_a_charge_younger_than_the_grace_period_to_the_fast_paths(stripe_emulator, settings):
    settings.RECONCILE_GRACE = timedelta(minutes=5)
    order = paid_order()

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_second_sweep_changes_nothing(stripe_emulator, mailoutbox, django_capture_on_commit_callbacks):
    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    events = OrderEvent.objects.filter(order=order).count()

    with django_capture_on_commit_callbacks(execute=True):
        output = sweep()

    assert OrderEvent.objects.filter(order=order).count() == events
    assert len(mailoutbox) == 1
    assert "nothing to fix" in output


def test_a_charge_without_backstop_metadata_is_never_touched(stripe_emulator):
    stripe.PaymentIntent.create(amount=24900, currency="usd", confirm=True, payment_method="pm_card_visa",
                                payment_method_types=["card"], metadata={"shop": "another product"})

    sweep()

    assert djstripe_models.Charge.objects.count() == 1  # mirrored, as everything is
    assert not Order.objects.exists()
    assert not Alert.objects.exists()


def test_an_order_lost_in_a_restore_is_recreated_active_with_one_entitlement_and_one_confirmation(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    PlanFactory_plan = Plan.objects.create(code="annual", name="Annual", amount_cents=24900, currency="usd",
                                           duration_months=12)
    payment = backstop_payment_without_order(email="lost@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order = Order.objects.get(reference="BK-7F3K-9QX2")
    assert (order.state, order.email, order.plan, order.amount_cents) == (
        OrderState.ACTIVE, "lost@example.com", PlanFactory_plan, 24900)
    assert order.stripe_payment_intent_id == payment.id
    assert Entitlement.objects.filter(order=order).count() == 1
    assert [m.to for m in mailoutbox] == [["lost@example.com"]]
    assert order.events.filter(reason__startswith="Order recreated from Stripe's records").exists()


def test_a_deleted_order_and_its_lost_mirror_are_both_rebuilt_from_stripe(
    stripe_emulator, django_capture_on_commit_callbacks
):
    order = paid_order(email="ada@example.com")
    reference = order.reference
    # A restore from a backup taken before the payment: no order, no mirror, an older cursor.
    Order.objects.filter(pk=order.pk).delete()
    djstripe_models.Charge.objects.all().delete()
    StripeSyncCursor.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    assert Order.objects.get(reference=reference).state == OrderState.ACTIVE


def test_a_lost_order_whose_amount_matches_no_plan_is_held_for_review_and_the_customer_told(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    Plan.objects.create(code="annual", name="Annual", amount_cents=24900, currency="usd", duration_months=12)
    backstop_payment_without_order(amount=1234)

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order = Order.objects.get(reference="BK-7F3K-9QX2")
    assert order.state == OrderState.NEEDS_REVIEW
    assert order.refund_deadline_at is not None
    assert not Entitlement.objects.filter(order=order).exists()
    assert [e.kind for e in order.emails.all()] == ["payment_received"]
    assert Alert.objects.filter(order=order, kind="held_money").count() == 1


def test_a_lost_order_for_a_withdrawn_plan_is_held_for_review(stripe_emulator, django_capture_on_commit_callbacks):
    Plan.objects.create(code="annual", name="Annual", amount_cents=24900, currency="usd", duration_months=12,
                        is_active=False)
    backstop_payment_without_order()

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order = Order.objects.get(reference="BK-7F3K-9QX2")
    assert order.state == OrderState.NEEDS_REVIEW
    assert "no longer on sale" in order.attention_reason


def test_a_refund_made_in_stripes_dashboard_ends_access_and_sends_the_refund_email(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id)  # someone in the dashboard

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert Entitlement.objects.get(order=order).revoked_at is not None
    assert [m.subject for m in mailoutbox][-1] == f"Your refund for {order.reference}"


def test_a_partial_refund_made_in_stripes_dashboard_is_recorded_and_access_stays(
    stripe_emulator, django_capture_on_commit_callbacks
):
    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=4900)

    sweep()

    order.refresh_from_db()
    assert (order.state, order.amount_refunded_cents) == (OrderState.ACTIVE, 4900)
    assert Entitlement.objects.get(order=order).revoked_at is None


def test_a_dispute_puts_the_order_in_front_of_a_person(stripe_emulator, django_capture_on_commit_callbacks):
    order = order_with_payment_intent()
    stripe.PaymentIntent.confirm(order.stripe_payment_intent_id, payment_method="pm_card_createDispute",
                                 return_url="http://testserver/return")

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    order.refresh_from_db()
    assert order.state == OrderState.DISPUTED
    assert Alert.objects.filter(order=order, kind="dispute").count() == 1


def test_a_pending_order_that_never_started_paying_is_canceled_after_a_day(stripe_emulator):
    order = OrderFactory()
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    recent = OrderFactory()

    sweep()

    order.refresh_from_db()
    recent.refresh_from_db()
    assert (order.state, recent.state) == (OrderState.CANCELED, OrderState.PENDING)
    assert order.events.get(to_state="canceled").actor == "sweep"


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(stripe_emulator, mailoutbox):
    order = paid_order()

    output = sweep("--dry-run", "-v", "2")

    order.refresh_from_db()
    assert f"would settle {order.reference}" in output
    assert order.state == OrderState.PENDING
    assert not ReconcileRun.objects.exists()
    assert not djstripe_models.Charge.objects.exists()
    assert not StripeSyncCursor.objects.exists()
    assert not mailoutbox


def test_each_run_is_recorded_with_its_window_counts_and_duration(stripe_emulator):
    paid_order()

    sweep()
    sweep()

    first, second = ReconcileRun.objects.order_by("started_at")
    assert first.status == ReconcileRun.Status.OK
    assert first.counts["settled"] == 1
    assert first.duration_ms is not None
    assert second.window_start == first.started_at - reconcile.WINDOW_OVERLAP


def test_since_refuses_what_is_not_a_date_or_a_duration():
    with pytest.raises(CommandError, match="--since takes"):
        call_command("reconcile", "--since", "yesterday-ish")


def test_the_schedule_runs_the_sweep_every_minute():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())

    schedule = Schedule.objects.get(func="billing.tasks.reconcile")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1)


def test_a_failed_confirmation_email_is_handed_to_a_person_once(stripe_emulator):
    order = OrderFactory()
    email = OutboundEmail.objects.create(about=order, kind="confirmation", recipient=order.email,
                                         status=OutboundEmail.Status.FAILED, last_error="550 mailbox unavailable")

    sweep()
    sweep()

    assert Alert.objects.filter(email=email, kind="email").count() == 1


def test_a_sweep_skips_while_another_host_is_sweeping(stripe_emulator):
    assert locks.lease_take("sweep", holder="host-b:4242:abcd", seconds=60)

    output = sweep()

    assert "skipped" in output
    assert ReconcileRun.objects.get().status == ReconcileRun.Status.SKIPPED


def test_a_sweep_killed_while_holding_the_lease_keeps_the_others_out_only_until_it_runs_out(stripe_emulator):
    # The killed sweep never released it; its lease ran out.
    Lease.objects.create(name="sweep", holder="host-b:4242:abcd", expires_at=timezone.now() - timedelta(seconds=1))

    sweep()

    assert ReconcileRun.objects.get().status == ReconcileRun.Status.OK
    assert Lease.objects.get(name="sweep").holder == ""


@pytest.mark.django_db(transaction=True)
def test_of_two_hosts_taking_the_lease_at_once_exactly_one_gets_it():
    won = []
    errors = at_once(lambda: won.append(locks.lease_take("sweep", holder=f"host-{threading.get_ident()}",
                                                         seconds=60)), times=4)
    assert errors == []
    assert sorted(won) == [False, False, False, True]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_without_the_lock_activate_the_order_once(stripe_emulator, mailoutbox):
    order = paid_order()
    reports = [reconcile.SweepReport(), reconcile.SweepReport()]
    unused = list(reports)

    errors = at_once(lambda: reconcile._sweep(unused.pop(), now=timezone.now(), since=None))

    errors += [error for report in reports for error in report.errors]
    assert errors == []
    assert OrderEvent.objects.filter(order=order, to_state="active").count() == 1
    assert Entitlement.objects.filter(order=order).count() == 1
    assert order.emails.filter(kind="confirmation").count() == 1
