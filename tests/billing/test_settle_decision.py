"""Settle's decision, over every combination of Stripe's facts and the order's (no database: the
decision is plain data in, plain data out; billing/services/settle.py applies it under the lock)."""

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import OrderState
from billing.settle_decision import (
    ACTIVE,
    DISPUTED,
    FAILED,
    MONEY_IN_FLIGHT,
    NEEDS_REVIEW,
    PAID,
    PENDING,
    PROCESSING,
    REFUND_PENDING,
    REFUNDED,
    STATES,
    UNFINISHED_PAYMENT,
    Activate,
    AlertRefundSentBack,
    ChangeState,
    HoldMoney,
    OrderNow,
    StripePayment,
    decide,
    order_after,
)
from billing.states import can_transition

# Pure and fast: many examples, the same ones every run so the suite never fails at random.
often = settings(max_examples=400, derandomize=True, database=None)

STATUSES = ["succeeded", *MONEY_IN_FLIGHT, *UNFINISHED_PAYMENT, "canceled"]
# A refunded order is final (billing/states.py lists no way out of it): whatever Stripe says later,
# settle may not move it, and `_move` refuses if asked. Most properties below start everywhere else.
NOT_FINAL = [state for state in STATES if state != REFUNDED]


# Each strategy is made once and drawn from many times: hypothesis checks a strategy the first time it
# is drawn from, which for a new one per example cost as much as the examples themselves (about 6 of
# this file's 13 CPU-s). The examples are those of the same strategies made afresh each time.
@functools.cache
def _one_of(value, *others):
    """`value`, or any of `others`."""
    return st.one_of(st.just(value), st.sampled_from(others))


@functools.cache
def _sampled(*values):
    return st.sampled_from(values)


@functools.cache
def _refunded(received):
    return st.one_of(st.just(0), st.just(received), st.integers(0, received + 1))


BOOLEANS, BELONGS = st.booleans(), st.booleans() | st.just(True)
PAYMENT_ERRORS = st.one_of(st.none(), st.just(""), st.text(max_size=600))


@st.composite
def facts(draw, states=NOT_FINAL, statuses=STATUSES):
    """An order and what Stripe says about its payment; amounts often equal, as in life."""
    asked = draw(_sampled(24900, 24800, 100, 5000))
    currency = draw(_sampled("usd", "eur"))
    received = draw(_one_of(asked, 0, 1, asked - 1, asked + 1, 30000))
    charge_seen = draw(BOOLEANS)
    refunded = draw(_refunded(received)) if charge_seen else 0
    payment = StripePayment(
        belongs=draw(BELONGS),
        status=draw(_sampled(*statuses)),
        amount_received=received,
        currency=draw(_one_of(currency, "usd", "eur", "jpy")),
        charge_seen=charge_seen,
        amount_refunded=refunded,
        refunded=charge_seen and draw(BOOLEANS),
        disputed=charge_seen and draw(BOOLEANS),
        payment_error=draw(PAYMENT_ERRORS),
        cancellation_reason=draw(_sampled("", "abandoned", "requested_by_customer")),
    )
    order = OrderNow(state=draw(_sampled(*states)), amount_cents=asked, currency=currency,
                     amount_refunded_cents=draw(_sampled(0, refunded, 100)), held=draw(BOOLEANS))
    return payment, order


def states_passed(order, moves):
    """Each state the order is moved into, in turn (an activation moves it to active)."""
    return [move.to_state if isinstance(move, ChangeState) else ACTIVE
            for move in moves if isinstance(move, ChangeState | Activate)]


def stripe_holds_money(payment):
    return payment.status == "succeeded" and not (
        payment.charge_seen and (payment.refunded or payment.amount_refunded >= payment.amount_received))


def test_the_decision_knows_every_order_state_and_no_other():
    assert sorted(STATES) == sorted(OrderState.values)


@often
@given(facts(states=STATES))
def test_the_decision_depends_on_the_facts_alone(case):
    payment, order = case

    assert decide(payment, order) == decide(payment, order)


@often
@given(facts())
def test_its_moves_never_make_a_transition_the_state_machine_forbids(case):
    payment, order = case
    state = order.state

    for to_state in states_passed(order, decide(payment, order)):
        assert can_transition(state, to_state), f"{state} -> {to_state}"
        state = to_state


@often
@given(facts(states=STATES))
def test_a_payment_stripe_shows_fully_refunded_always_ends_refunded(case):
    payment, order = case
    payment = StripePayment(**{**payment.__dict__, "belongs": True, "status": "succeeded", "charge_seen": True,
                               "amount_refunded": payment.amount_received})

    assert order_after(order, decide(payment, order)).state == REFUNDED


@often
@given(facts())
def test_money_stripe_holds_without_service_is_always_held_openly(case):
    payment, order = case

    after = order_after(order, decide(payment, order))

    if stripe_holds_money(payment):
        assert after.state in (ACTIVE, DISPUTED, REFUND_PENDING) or (after.state == NEEDS_REVIEW and after.held)


@often
@given(facts(statuses=[status for status in STATUSES if status != "succeeded"]))
def test_money_is_never_held_for_a_payment_that_took_none(case):
    payment, order = case

    assert HoldMoney() not in decide(payment, order)


@often
@given(facts(statuses=list(UNFINISHED_PAYMENT)))
def test_a_payment_waiting_for_the_customer_never_makes_an_order_processing(case):
    payment, order = case
    moves = decide(payment, order)

    assert PROCESSING not in states_passed(order, moves)
    assert order_after(order, moves).state != PROCESSING


@often
@given(facts(statuses=[status for status in STATUSES if status != "succeeded"]))
def test_an_order_stripe_has_not_been_paid_for_is_never_paid(case):
    payment, order = case
    moves = decide(payment, order)

    assert not set(states_passed(order, moves)) & {PAID, ACTIVE}
    assert order_after(order, moves).state not in (PAID, ACTIVE)


@often
@given(facts())
def test_access_is_granted_only_for_the_amount_asked_and_kept(case):
    payment, order = case

    if Activate() in decide(payment, order):
        assert payment.belongs
        assert payment.status == "succeeded"
        assert (payment.amount_received, payment.currency) == (order.amount_cents, order.currency)
        assert stripe_holds_money(payment)


@often
@given(facts(states=[PENDING, PROCESSING, FAILED, PAID, ACTIVE]))
def test_a_payment_of_the_amount_asked_kept_and_undisputed_leaves_the_order_active(case):
    payment, order = case
    payment = StripePayment(**{**payment.__dict__, "belongs": True, "status": "succeeded", "amount_refunded": 0,
                               "refunded": False, "disputed": False, "amount_received": order.amount_cents,
                               "currency": order.currency})

    assert order_after(order, decide(payment, order)).state == ACTIVE


@often
@given(facts())
def test_a_payment_that_is_not_the_orders_puts_the_order_in_front_of_a_person(case):
    payment, order = case
    payment = StripePayment(**{**payment.__dict__, "belongs": False})

    assert order_after(order, decide(payment, order)).state == NEEDS_REVIEW


@often
@given(facts())
def test_deciding_again_on_what_the_moves_left_changes_nothing(case):
    payment, order = case

    after = order_after(order, decide(payment, order))

    assert decide(payment, after) == []


@often
@given(facts(states=STATES))
def test_stripe_showing_less_refunded_than_recorded_is_always_put_before_a_person(case):
    payment, order = case
    payment = StripePayment(**{**payment.__dict__, "belongs": True, "status": "succeeded", "charge_seen": True})

    alerts = [move for move in decide(payment, order) if isinstance(move, AlertRefundSentBack)]

    if payment.amount_refunded < order.amount_refunded_cents:
        assert alerts == [AlertRefundSentBack(order.amount_refunded_cents - payment.amount_refunded,
                                              payment.amount_refunded)]
    else:
        assert alerts == []


@often
@given(facts(states=[REFUNDED]))
def test_a_refunded_order_whose_refund_came_back_neither_activates_nor_holds_the_money(case):
    payment, order = case
    payment = StripePayment(**{**payment.__dict__, "belongs": True, "status": "succeeded", "charge_seen": True,
                               "refunded": False, "amount_refunded": 0})
    order = OrderNow(**{**order.__dict__, "amount_refunded_cents": payment.amount_received or 1, "held": False})

    moves = decide(payment, order)

    assert not [move for move in moves if isinstance(move, Activate | HoldMoney | ChangeState)]


@often
@given(facts(states=[REFUNDED]))
def test_a_refunded_order_is_never_moved_whatever_stripe_says(case):
    payment, order = case

    assert states_passed(order, decide(payment, order)) == []
