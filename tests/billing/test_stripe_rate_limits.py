"""Stripe's rate limits met at our door (billing/stripe_api.py, billing/stripe_pacing.py): a 429 is
waited out and sent again under the same idempotency key, a person is never held long, and the
sweep yields to checkout."""

import threading
import time

import pytest
import stripe
from django.urls import reverse

from billing import stripe_api, stripe_pacing
from billing.tokens import order_status_token
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_budget(monkeypatch):
    """Each test starts with this process's background budget full and no pause from another test."""
    monkeypatch.setattr(stripe_pacing, "BUDGET", stripe_pacing.BackgroundBudget())


def pay_page(client, order):
    return client.get(reverse("billing:pay", kwargs={"token": order_status_token(order)}))


def payment_intents_at_stripe(control) -> list:
    control.limit_rates(mode="off")
    return stripe.PaymentIntent.list(limit=100).data


def test_a_checkout_rate_limited_by_stripe_waits_its_turn_and_makes_one_payment(client, stripe_emulator,
                                                                                emulator_control):
    OrderFactory(email="ada@example.com")  # the address ordered before: this order makes its Customer (0034)
    order = OrderFactory(email="ada@example.com")
    emulator_control.limit_rates(overall=1)  # the customer is made; the payment is refused at first

    response = pay_page(client, order)

    assert response.status_code == 200
    assert 'id="payment-form"' in response.content.decode()
    assert emulator_control.rate_limits()["refused_total"] >= 1
    order.refresh_from_db()
    assert [pi.id for pi in payment_intents_at_stripe(emulator_control)] == [order.stripe_payment_intent_id]


def test_a_payment_sent_again_after_429s_carries_the_same_idempotency_key(stripe_emulator, emulator_control):
    order = OrderFactory()
    emulator_control.fail_next(method="POST", path="/v1/payment_intents", count=2, status=429)

    with stripe_api.someone_waiting():
        payment_intent = stripe_api.payment_intent_create(idempotency_key=f"order-{order.public_id}",
                                                          amount=1000, currency="usd")

    sent_again = stripe_api.payment_intent_create(idempotency_key=f"order-{order.public_id}",
                                                  amount=1000, currency="usd")
    assert sent_again.id == payment_intent.id
    assert sent_again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(payment_intents_at_stripe(emulator_control)) == 1


def test_a_read_rate_limited_by_stripe_is_sent_again(stripe_emulator, emulator_control):
    created = stripe_api.payment_intent_create(idempotency_key="read-me", amount=1000, currency="usd")
    emulator_control.fail_next(method="GET", path=f"/v1/payment_intents/{created.id}", count=1, status=429)

    assert stripe_api.payment_intent_retrieve(created.id).id == created.id


def test_a_checkout_that_stays_rate_limited_gets_the_try_again_page_within_seconds(client, stripe_emulator,
                                                                                   emulator_control):
    order = OrderFactory()
    emulator_control.fail_next(method="POST", path="/v1/", count=100, status=429)
    started = time.monotonic()

    response = pay_page(client, order)

    assert time.monotonic() - started < 4  # 2.75 s of waits at most
    assert response.status_code == 503
    page = response.content.decode()
    assert "We can't take your payment just this minute" in page
    assert payment_intents_at_stripe(emulator_control) == []


def test_the_calls_of_one_page_wait_out_429s_for_the_interactive_timeout_in_all(stripe_emulator, emulator_control,
                                                                                settings):
    settings.STRIPE_INTERACTIVE_TIMEOUT = 2
    created = stripe_api.payment_intent_create(idempotency_key="three-reads", amount=1000, currency="usd")
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=100, status=429)
    started = time.monotonic()

    with stripe_api.someone_waiting():
        for _ in range(3):  # each alone would wait at least 0.875 s before giving up
            with pytest.raises(stripe.RateLimitError):
                stripe_api.payment_intent_retrieve(created.id)

    assert time.monotonic() - started < 2.5


def test_background_calls_keep_to_their_budget_per_second(stripe_emulator, settings):
    settings.STRIPE_BACKGROUND_RATE = 4
    created = stripe_api.payment_intent_create(idempotency_key="budget", amount=1000, currency="usd")
    started = time.monotonic()

    for _ in range(8):  # four at once (a second's worth), then four more at four a second
        stripe_api.payment_intent_retrieve(created.id)

    assert time.monotonic() - started >= 0.9


def test_calls_made_while_someone_waits_take_no_turn_from_the_background_budget(stripe_emulator, settings):
    settings.STRIPE_BACKGROUND_RATE = 1
    created = stripe_api.payment_intent_create(idempotency_key="first", amount=1000, currency="usd")
    started = time.monotonic()

    with stripe_api.someone_waiting():
        for _ in range(5):
            stripe_api.payment_intent_retrieve(created.id)

    assert time.monotonic() - started < 1  # five calls at one a second would take four


def test_after_a_429_background_calls_pause_while_checkout_goes_first(stripe_emulator, emulator_control):
    created = stripe_api.payment_intent_create(idempotency_key="pause", amount=1000, currency="usd")
    emulator_control.fail_next(method="GET", path="/v1/charges", count=1, status=429)
    listed = []
    sweep = threading.Thread(target=lambda: listed.extend(stripe_api.list_created_since("charges", 0)))
    sweep.start()
    while emulator_control.faults():  # until the sweep's list has met its 429
        time.sleep(0.02)

    with stripe_api.someone_waiting():
        assert stripe_api.payment_intent_retrieve(created.id).id == created.id

    assert sweep.is_alive()  # still paused: the person's call went first
    sweep.join(timeout=30)
    assert not sweep.is_alive()
    assert listed == []


def test_the_sweep_yields_to_checkouts_when_stripe_limits_the_account(client, stripe_emulator, emulator_control,
                                                                      settings):
    # Three requests a second for everyone; the sweep's share is one. Without the budget its lists
    # would take every request the moment it comes back, and the customers would be turned away.
    settings.STRIPE_BACKGROUND_RATE = 1
    emulator_control.limit_rates(overall=3)
    stop = threading.Event()
    sweep_errors = []

    def sweep():
        while not stop.is_set():
            try:
                list(stripe_api.list_created_since("payment_intents", 0))
            except stripe_api.StripeError as exc:
                sweep_errors.append(exc)

    sweeping = threading.Thread(target=sweep)
    sweeping.start()
    try:
        answers = [pay_page(client, OrderFactory()).status_code for _ in range(3)]
    finally:
        stop.set()
        sweeping.join(timeout=60)

    assert answers == [200, 200, 200]
    assert len(payment_intents_at_stripe(emulator_control)) == 3


# The background budget alone, on a clock of its own: what a pause is, without waiting for it.

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_after_a_429_a_background_turn_waits_out_the_pause():
    clock = Clock()
    budget = stripe_pacing.BackgroundBudget(clock=clock, sleep=clock.sleep)

    budget.limited()

    assert 2.0 <= budget.take_turn(5) <= 3.0


def test_a_429_after_a_pause_ran_out_doubles_the_next_pause():
    clock = Clock()
    budget = stripe_pacing.BackgroundBudget(clock=clock, sleep=clock.sleep)
    budget.limited()
    budget.take_turn(5)

    budget.limited()

    assert 4.0 <= budget.take_turn(5) <= 6.0


def test_429s_to_other_calls_during_a_pause_do_not_lengthen_it():
    clock = Clock()
    budget = stripe_pacing.BackgroundBudget(clock=clock, sleep=clock.sleep)
    budget.limited()

    for _ in range(10):
        budget.limited()

    assert budget.take_turn(5) <= 3.0


def test_a_call_that_went_through_starts_the_pauses_from_the_first_again():
    clock = Clock()
    budget = stripe_pacing.BackgroundBudget(clock=clock, sleep=clock.sleep)
    budget.limited()
    budget.take_turn(5)
    budget.answered()

    budget.limited()

    assert budget.take_turn(5) <= 3.0
