"""Issue 20, item 4: a charged customer is never called unpaid. The search results, the case
header and the queue label the money from the same facts as the diagnosis (order_money)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Charge

from billing.mirror import stripe_mirror_sync
from billing.models import Order
from support.selectors import console_search, order_diagnosis, order_money
from tests.billing.helpers import order_with_payment_intent, paid_order

pytestmark = pytest.mark.django_db


def search(console, q):
    return console.get(reverse("admin:index"), {"q": q}).content.decode()


def test_a_charged_order_nothing_finished_reads_charged_in_the_search_results(console, stripe_emulator):
    order = paid_order()  # charged at Stripe; no webhook, no return page, no sweep

    page = search(console, order.email)

    assert f"{order.reference} · Charged $249.00, not yet active" in page
    assert "Awaiting payment" not in page


def test_the_case_header_says_charged_above_the_diagnosis_that_says_so_too(console, stripe_emulator):
    order = paid_order()

    page = console.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    header = page.split('id="case-amount"')[1].split("</span>")[0]
    assert "Charged $249.00, not yet active" in header
    assert "not paid" not in page
    assert "Awaiting payment" not in page.split('id="case-diagnosis"')[0]
    assert "never activated" in page


def test_the_label_and_the_diagnosis_read_the_same_charge(stripe_emulator):
    order = paid_order()

    money = order_money(order)

    assert money.label == "Charged $249.00, not yet active"
    assert order_diagnosis(order, money=money).summary.startswith("Charged $249.00 at ")


def test_the_queue_says_charged_not_yet_active_with_the_amount(console, stripe_emulator):
    order = paid_order()
    stripe_mirror_sync()
    Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id).update(
        created=timezone.now() - timedelta(minutes=10))

    page = console.get(reverse("admin:index")).content.decode()

    assert f"{order.reference}: Charged $249.00, not yet active" in page.split('id="needs-attention"')[1]


def test_the_last_4_finds_a_charged_order_before_the_mirror_has_synced(console, stripe_emulator):
    order = paid_order()  # the order and the mirror know nothing of the card yet

    results = console_search("4242")

    assert [r["title"] for r in results] == [f"{order.reference} · Charged $249.00, not yet active"]


def test_the_last_4_of_another_card_does_not_find_it(stripe_emulator):
    paid_order()

    assert console_search("0005") == []


def test_an_order_nobody_paid_reads_not_charged(stripe_emulator):
    order = order_with_payment_intent()

    assert order_money(order).label == "Not charged ($249.00 asked)"
    assert console_search(order.email)[0]["title"] == f"{order.reference} · Not charged ($249.00 asked)"


def test_a_search_while_stripe_is_down_waits_on_it_once_and_says_what_it_could_not_check(emulator_control):
    orders = [order_with_payment_intent(email="ada@example.com") for _ in range(3)]
    emulator_control.fail_next(method="GET", path="/v1/payment_intents", count=100)

    titles = [r["title"] for r in console_search("ada@example.com")]

    used = 100 - emulator_control.faults()[0]["count"]
    assert 1 <= used <= 3  # one read (and the client's own retries of it)
    assert titles[0] == f"{orders[2].reference} · $249.00, maybe charged: Stripe could not be reached"
    assert titles[1:] == [f"{o.reference} · $249.00, not checked with Stripe here (open the case)"
                          for o in (orders[1], orders[0])]


def test_an_old_open_order_reads_as_our_records_and_the_mirror_say(stripe_emulator):
    order = order_with_payment_intent()
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=5))

    assert console_search(order.email)[0]["title"] == f"{order.reference} · Not charged ($249.00 asked)"
