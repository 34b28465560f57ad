from datetime import timedelta

import pytest
import stripe
from django.db import connection
from django.db.utils import DatabaseError

from accounts.models import Entitlement
from accounts.periods import add_months
from billing import services
from billing.errors import InvalidTransition
from billing.models import Order, OrderEvent, OrderState
from billing.services import history
from outbox.models import OutboundEmail
from tests.billing.helpers import at_once, order_with_payment_intent, paid_order, pay

pytestmark = pytest.mark.django_db


def settle(order, actor="webhook"):
    return services.order_settle(order_id=order.id, actor=actor, reason="test")


def test_a_paid_order_becomes_active_with_one_entitlement_for_twelve_months(stripe_emulator):
    order = paid_order(email="ada@example.com")

    order = settle(order)

    assert order.state == OrderState.ACTIVE
    entitlement = Entitlement.objects.get(order=order)
    assert entitlement.user.email == "ada@example.com"
    assert entitlement.starts_at == order.paid_at
    assert entitlement.ends_at.date() == add_months(order.paid_at, 12).date()
    assert order.card_last4 == "4242"


def test_activation_records_each_transition_with_its_actor_and_stripe_ids(stripe_emulator):
    order = settle(paid_order(), actor="customer")

    moves = list(OrderEvent.objects.filter(order=order).exclude(to_state="").values_list(
        "from_state", "to_state", "actor"))
    assert moves[-2:] == [("pending", "paid", "customer"), ("paid", "active", "customer")]
    last = OrderEvent.objects.filter(order=order, to_state="active").get()
    assert last.stripe_ids["payment_intent"] == order.stripe_payment_intent_id
    assert last.stripe_ids["charge"] == order.stripe_charge_id


def test_activation_sends_exactly_one_confirmation_email(stripe_emulator, mailoutbox,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = settle(paid_order(email="ada@example.com"))

    assert order.emails.get().status == OutboundEmail.Status.SENT
    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert order.reference in mailoutbox[0].subject


def test_settling_an_active_order_again_changes_nothing(stripe_emulator, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = settle(paid_order())
    events = OrderEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        settle(order, actor="sweep")
        settle(order, actor="customer")

    assert OrderEvent.objects.count() == events
    assert Entitlement.objects.count() == 1
    assert len(mailoutbox) == 1


def test_an_unpaid_order_stays_pending_when_settled(stripe_emulator):
    order = settle(order_with_payment_intent())

    assert order.state == OrderState.PENDING
    assert not Entitlement.objects.exists()


def test_an_order_without_a_payment_intent_is_left_alone():
    from tests.factories import OrderFactory

    order = services.order_settle(order_id=OrderFactory().id, actor="sweep")

    assert order.state == OrderState.PENDING


def test_a_declined_card_marks_the_order_failed_with_the_reason(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_chargeDeclined")

    order = settle(order)

    assert order.state == OrderState.FAILED
    assert "declined" in order.attention_reason.lower()


def test_a_retry_with_a_good_card_on_the_same_order_activates_it(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_chargeDeclinedInsufficientFunds")
    settle(order)

    pay(order, "pm_card_visa")
    order = settle(order)

    assert order.state == OrderState.ACTIVE
    assert len(stripe.Charge.list(payment_intent=order.stripe_payment_intent_id).data) == 2
    assert Entitlement.objects.count() == 1


def test_a_payment_waiting_for_3d_secure_is_pending_not_processing(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_authenticationRequired")

    assert settle(order).state == OrderState.PENDING  # nothing taken: the customer still has to confirm


def test_an_amount_that_differs_from_the_order_goes_to_review_not_to_active(stripe_emulator):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)

    order = settle(order)

    assert order.state == OrderState.NEEDS_REVIEW
    assert "$249.00" in order.attention_reason
    assert not Entitlement.objects.exists()


def test_money_taken_for_an_order_that_goes_to_review_tells_the_customer_we_have_it(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)

    with django_capture_on_commit_callbacks(execute=True):
        settle(order)
        settle(order)

    assert [e.kind for e in order.emails.all()] == ["payment_received"]
    assert "we have your payment" in mailoutbox[0].subject.lower()


def test_activating_a_paid_order_takes_at_most_ten_queries(stripe_emulator, django_assert_max_num_queries):
    order = paid_order()

    with django_assert_max_num_queries(10):
        settle(order)


def test_a_returning_customer_keeps_one_account_across_two_orders(stripe_emulator):
    first = settle(paid_order(email="ada@example.com"))
    second = settle(paid_order(email="ada@example.com"))

    assert first.user_id == second.user_id
    assert Entitlement.objects.filter(user_id=first.user_id).count() == 2


def test_a_canceled_payment_cancels_the_order(stripe_emulator):
    order = order_with_payment_intent()
    stripe.PaymentIntent.cancel(order.stripe_payment_intent_id, cancellation_reason="abandoned")

    assert settle(order).state == OrderState.CANCELED


def test_a_fully_refunded_payment_revokes_access(stripe_emulator):
    order = settle(paid_order())
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id)

    order = settle(order, actor="webhook")

    assert order.state == OrderState.REFUNDED
    assert Entitlement.objects.get(order=order).revoked_at is not None


def test_transitions_the_state_machine_does_not_list_are_refused():
    from tests.factories import OrderFactory

    order = OrderFactory(state=OrderState.REFUNDED)

    with pytest.raises(InvalidTransition):
        history._move(order, OrderState.ACTIVE, actor="support:x", reason="no")


def fail_on(sql_fragment):
    def wrapper(execute, sql, params, many, context):
        if sql_fragment in sql:
            raise DatabaseError(f"injected failure on {sql_fragment}")
        return execute(sql, params, many, context)
    return wrapper


def test_a_crash_after_the_charge_and_before_activation_is_completed_by_the_next_settle(stripe_emulator):
    order = paid_order()

    with connection.execute_wrapper(fail_on('INSERT INTO "accounts_entitlement"')), \
            pytest.raises(DatabaseError):
        settle(order, actor="checkout")

    order.refresh_from_db()
    assert order.state == OrderState.PENDING  # the whole step rolled back, nothing half-done
    assert settle(order, actor="customer").state == OrderState.ACTIVE
    assert order.emails.count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_settles_give_one_entitlement_and_one_email(stripe_emulator):
    order = paid_order()

    errors = at_once(lambda: services.order_settle(order_id=order.id, actor="webhook", reason="race"), times=8)

    assert errors == []
    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert Entitlement.objects.filter(order=order).count() == 1
    assert order.emails.filter(kind="confirmation").count() == 1
    assert OrderEvent.objects.filter(order=order, to_state="active").count() == 1


def test_add_months_clamps_to_the_end_of_a_shorter_month():
    from datetime import UTC, datetime

    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 26, tzinfo=UTC), 12) - datetime(
        2026, 11, 26, tzinfo=UTC) == timedelta(days=365)


def test_a_partial_refund_keeps_access_and_records_the_amount(stripe_emulator):
    order = settle(paid_order())
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=4900)

    order = settle(order, actor="webhook")

    assert order.state == OrderState.ACTIVE
    assert order.amount_refunded_cents == 4900
    assert order.events.filter(reason__startswith="Stripe shows $49.00 refunded").exists()


def test_a_disputed_payment_puts_the_order_in_front_of_a_person(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_createDispute")

    order = settle(order)

    assert order.state == OrderState.DISPUTED
    assert Entitlement.objects.filter(order=order, revoked_at__isnull=True).exists()
