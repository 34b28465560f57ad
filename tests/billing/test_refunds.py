"""`order_refund`: the one way Backstop gives money back."""

import threading
import time

import pytest
import stripe
from django.db import connection, transaction

from accounts.models import Entitlement
from billing import services
from billing.errors import BillingError, RefundFailed
from billing.models import Order, OrderState
from support.models import Alert
from tests.billing.helpers import at_once, order_with_payment_intent, paid_order

pytestmark = pytest.mark.django_db


def active_order(**fields):
    order = paid_order(**fields)
    return services.order_settle(order_id=order.id, actor="webhook")


def refund(order, **kwargs):
    kwargs.setdefault("reason", "Customer asked by email")
    return services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", **kwargs)


def test_a_full_refund_ends_access_and_sends_one_refund_email_saying_why(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = active_order()

    with django_capture_on_commit_callbacks(execute=True):
        order = refund(order, reason="You asked us to cancel within 30 days.")

    assert order.state == OrderState.REFUNDED
    assert order.amount_refunded_cents == 24900
    assert Entitlement.objects.get(order=order).revoked_at is not None
    refund_emails = [m for m in mailoutbox if m.subject == f"Your refund for {order.reference}"]
    assert len(refund_emails) == 1
    assert "You asked us to cancel within 30 days." in refund_emails[0].body
    assert "has ended" in refund_emails[0].body


def test_each_step_of_a_refund_is_recorded_with_who_asked(stripe_emulator):
    order = refund(active_order())

    moves = list(order.events.exclude(to_state="").values_list("to_state", "actor"))
    assert moves[-2:] == [("refund_pending", "support:ana@backstop.localhost"),
                          ("refunded", "support:ana@backstop.localhost")]
    assert order.events.filter(stripe_ids__has_key="refund").exists()


def test_refunding_twice_makes_one_refund_at_stripe(stripe_emulator):
    order = active_order()

    refund(order)
    refund(order)

    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1


@pytest.mark.django_db(transaction=True)
def test_two_people_refunding_at_once_make_one_refund_at_stripe(stripe_emulator):
    order = active_order()

    errors = at_once(lambda: refund(order))

    assert errors == []
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1
    assert order.emails.filter(kind="refund").count() == 1


def _waiting_for_a_lock(timeout=30.0):
    """Until another connection waits for a lock this one holds (polled: pg_locks is live)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("nobody waited for the order's lock")


@pytest.mark.django_db(transaction=True)
def test_a_refund_whose_order_a_colleague_refunded_after_it_read_stripe_is_the_same_refund(stripe_emulator):
    order = active_order()
    second = {}

    def colleague():
        try:
            second["order"] = refund(order)
        except Exception as exc:  # what the second person would be shown
            second["error"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order.pk)  # the first person's lock, taken first
        thread = threading.Thread(target=colleague)
        thread.start()
        _waiting_for_a_lock()  # the colleague read Stripe (nothing refunded yet) and waits for the order
        refund(order)  # the first person's refund, done and settled under that lock
    thread.join(timeout=60)

    assert "error" not in second
    assert second["order"].state == OrderState.REFUNDED
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1


def test_a_partial_refund_keeps_access_and_records_the_amount(stripe_emulator):
    order = refund(active_order(), amount_cents=4900)

    assert (order.state, order.amount_refunded_cents) == (OrderState.ACTIVE, 4900)
    assert Entitlement.objects.get(order=order).revoked_at is None


def test_a_second_partial_refund_of_the_same_amount_is_a_second_refund(stripe_emulator):
    order = active_order()

    refund(order, amount_cents=4900)
    order = refund(order, amount_cents=4900)

    assert order.amount_refunded_cents == 9800


def test_a_refund_larger_than_what_is_left_is_refused(stripe_emulator):
    order = refund(active_order(), amount_cents=20000)

    with pytest.raises(BillingError, match=r"between \$0.01 and \$49.00"):
        refund(order, amount_cents=5000)


def test_an_order_that_was_never_paid_cannot_be_refunded(stripe_emulator):
    order = order_with_payment_intent()

    with pytest.raises(BillingError, match="no completed payment"):
        refund(order)


def test_a_refund_stripe_does_not_confirm_waits_in_refund_pending_and_alerts_the_team(
    stripe_emulator, emulator_control
):
    order = active_order()
    emulator_control.fail_next(method="POST", path="/v1/refunds", count=3, status=500)

    with pytest.raises(RefundFailed):
        refund(order)

    order.refresh_from_db()
    assert order.state == OrderState.REFUND_PENDING
    assert Alert.objects.filter(order=order, kind="refund_failed").exists()
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data


def test_a_refund_left_pending_is_finished_by_trying_again(stripe_emulator, emulator_control):
    order = active_order()
    emulator_control.fail_next(method="POST", path="/v1/refunds", count=3, status=500)
    with pytest.raises(RefundFailed):
        refund(order)

    order = refund(order)

    assert order.state == OrderState.REFUNDED
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1
