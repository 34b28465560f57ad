"""The pull sync: what the webhooks never delivered reaches dj-stripe's mirror anyway."""

import time

import pytest
import stripe
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djstripe import models as djstripe_models

from billing import stripe_api
from billing.mirror import stripe_mirror_sync
from billing.models import StripeSyncCursor
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def paid_order_on_a_customer():
    """A purchase whose PaymentIntent names a Stripe Customer: its address ordered before (0034)."""
    return paid_order(email=OrderFactory().email)


def test_the_pull_sync_mirrors_a_payment_whose_webhooks_never_arrived(stripe_emulator):
    order = paid_order()

    result = stripe_mirror_sync()

    assert result.errors == []
    charge = djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id)
    assert charge.status == "succeeded"
    assert charge.metadata["reference"] == order.reference


def test_a_payment_is_mirrored_from_the_lists_without_fetching_what_it_refers_to_one_by_one(
    stripe_emulator, emulator_control
):
    order = paid_order_on_a_customer()
    for path in ("/v1/customers/*", "/v1/payment_methods/*", "/v1/balance_transactions/*"):
        emulator_control.fail_next(method="GET", path=path, count=10, status=500)

    result = stripe_mirror_sync()

    assert result.errors == []
    assert [fault["count"] for fault in emulator_control.faults()] == [10, 10, 10]
    charge = djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id)
    assert charge.balance_transaction is not None
    assert charge.customer is not None


def test_a_pass_asks_for_the_account_that_owns_what_it_mirrors_once(stripe_emulator):
    for _ in range(3):
        paid_order()
    djstripe_models.Account.get_or_retrieve_for_api_key(stripe.api_key)  # the account row exists, as it would

    with CaptureQueriesContext(connection) as queries:
        stripe_mirror_sync()

    api_key_lookups = [q for q in queries.captured_queries if 'FROM "djstripe_apikey"' in q["sql"]]
    assert len(api_key_lookups) == 1
    assert djstripe_models.Charge.objects.filter(djstripe_owner_account__isnull=False).count() == 3


def test_after_a_pass_dj_stripe_finds_the_owner_account_as_before(stripe_emulator):
    stripe_mirror_sync()

    account = djstripe_models.Account.get_or_retrieve_for_api_key(stripe.api_key)

    assert account is not None
    assert "get_or_retrieve_for_api_key" in vars(djstripe_models.Account)


def test_the_high_water_mark_is_the_newest_object_seen(stripe_emulator):
    order = paid_order()

    stripe_mirror_sync()

    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    assert StripeSyncCursor.objects.get(resource="payment_intents").created_gte == pi.created


def test_a_quiet_sync_lists_again_only_the_overlap_and_mirrors_nothing(stripe_emulator):
    paid_order()
    stripe_mirror_sync()

    result = stripe_mirror_sync()

    assert result.mirrored == {"payment_intents": 0, "charges": 0, "refunds": 0, "disputes": 0,
                               "charges_refreshed": 0}


def test_objects_older_than_the_high_water_mark_and_its_overlap_are_not_listed_again(
    stripe_emulator, emulator_control
):
    paid_order()
    stripe_mirror_sync()
    emulator_control.advance_clock(3600)
    paid_order()
    stripe_mirror_sync()

    result = stripe_mirror_sync()

    assert result.listed == {"payment_intents": 1, "charges": 1, "refunds": 0, "disputes": 0}


def test_a_refund_made_in_stripe_refreshes_its_older_charge_in_the_mirror(stripe_emulator, emulator_control):
    order = paid_order()
    stripe_mirror_sync()
    emulator_control.advance_clock(3600)  # the charge is now outside the listing window
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id)

    stripe_mirror_sync()

    charge = djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id)
    assert charge.stripe_data["refunded"] is True


def test_a_dry_run_reads_stripe_and_writes_nothing(stripe_emulator):
    paid_order()

    result = stripe_mirror_sync(dry_run=True)

    assert result.mirrored["charges"] == 1
    assert not djstripe_models.Charge.objects.exists()
    assert not StripeSyncCursor.objects.exists()


def test_a_stripe_outage_is_reported_and_the_high_water_mark_stays(stripe_emulator, emulator_control):
    paid_order()
    stripe_mirror_sync()
    before = dict(StripeSyncCursor.objects.values_list("resource", "created_gte"))
    emulator_control.fail_next(method="GET", path="/v1/charges", count=3, status=500)

    result = stripe_mirror_sync()

    assert any("listing charges" in error for error in result.errors)
    assert dict(StripeSyncCursor.objects.values_list("resource", "created_gte")) == before


def test_the_sync_reads_every_page(stripe_emulator, emulator_control):
    emulator_control.seed(charges=130)

    objects = list(stripe_api.list_created_since("charges", 0, page_size=50))

    assert len(objects) == 130


def test_a_long_catch_up_advances_pass_by_pass(stripe_emulator, emulator_control, monkeypatch):
    from billing import mirror

    monkeypatch.setattr(mirror, "MAX_MIRRORED_PER_PASS", 50)
    emulator_control.seed(charges=120)

    passes = [stripe_mirror_sync().mirrored["charges"] for _ in range(4)]

    assert passes == [50, 50, 20, 0]
    assert djstripe_models.Charge.objects.count() == 120


def test_passes_out_of_time_keep_what_they_mirrored_and_the_next_pass_continues(
    stripe_emulator, emulator_control, monkeypatch
):
    from billing import mirror

    # Out of time once its PaymentIntents are listed and written: charges come in later passes. On a
    # busy machine a pass writes one object; each pass lists everything again, so 20 payments (40
    # objects) are enough passes to show it and few enough to be quick.
    monkeypatch.setattr(mirror, "TIME_BUDGET_SECONDS", 0.05)
    emulator_control.seed(charges=20)

    passes = []
    while sum(passes) < 20 and len(passes) < 100:  # every pass writes at least one object (40 here)
        passes.append(stripe_mirror_sync().mirrored.get("charges", 0))

    assert passes[0] < 20
    assert sum(passes) == 20  # none written twice
    assert djstripe_models.Charge.objects.count() == 20


def test_a_pass_on_a_machine_too_slow_for_its_time_budget_still_mirrors_something(
    stripe_emulator, emulator_control, monkeypatch
):
    from billing import mirror

    monkeypatch.setattr(mirror, "TIME_BUDGET_SECONDS", 0)  # out of time before Stripe even answers
    emulator_control.seed(charges=3)

    passes = [sum(stripe_mirror_sync().mirrored.values()) for _ in range(3)]

    assert all(written >= 1 for written in passes[:2])


def test_dj_stripe_keeps_the_charge_amount_in_major_units_as_the_sweeps_index_assumes(stripe_emulator):
    # billing/selectors.py finds amount mismatches from dj-stripe's `amount` column (dollars, not
    # cents) so it need not read every charge's JSON; a dj-stripe upgrade that changes this must fail here.
    order = paid_order()

    stripe_mirror_sync()

    charge = djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id)
    assert charge.amount * 100 == charge.stripe_data["amount"] == 24900


def test_a_pass_writes_its_purchases_with_one_insert_per_kind_of_row_and_asks_the_rest_once(stripe_emulator):
    """Their PaymentIntents, customers, cards, charges and balance transactions: one INSERT per
    kind; which of them the mirror holds is asked once per kind of row, whatever the number of
    purchases."""
    djstripe_models.Account.get_or_retrieve_for_api_key(stripe.api_key)
    for _ in range(3):
        paid_order_on_a_customer()

    with CaptureQueriesContext(connection) as queries:
        result = stripe_mirror_sync()

    assert result.errors == []
    tables = ("paymentintent", "customer", "paymentmethod", "charge", "balancetransaction")
    mirror = [q["sql"] for q in queries.captured_queries
              if any(f'"djstripe_{table}"' in q["sql"].split(" WHERE ")[0] for table in tables)]
    inserts = [sql for sql in mirror if sql.startswith("INSERT")]
    assert len(inserts) == 5
    # Per resource listed: what the mirror holds of the objects listed, and of what they refer to
    # (PaymentIntents: customers and cards; charges: balance transactions, the rest known by then).
    assert [sql.split(" FROM ")[1].split(" ")[0] for sql in mirror if sql.startswith("SELECT")] == [
        '"djstripe_paymentintent"', '"djstripe_customer"', '"djstripe_paymentmethod"',
        '"djstripe_charge"', '"djstripe_balancetransaction"']
    assert djstripe_models.Charge.objects.filter(customer__isnull=False, payment_method__isnull=False,
                                                 payment_intent__isnull=False,
                                                 balance_transaction__isnull=False).count() == 3


def _fetches(emulator_control) -> int:
    """GET requests for one object by id (the calls dj-stripe makes for what a list left out)."""
    return sum(r["count"] for r in emulator_control.state()["requests"]
               if r["method"] == "GET" and r["path"] in ("/v1/payment_intents/{}", "/v1/customers/{}",
                                                         "/v1/payment_methods/{}"))


def _payment_intents_listed_from(seconds_from_now: int):
    """As if the pass's PaymentIntent list had been read before the payment began (a payment made
    while the pass mirrored): the PaymentIntents listed start after this one's."""
    StripeSyncCursor.objects.update_or_create(resource="payment_intents",
                                              defaults={"created_gte": int(time.time()) + seconds_from_now})


def test_a_charge_whose_payment_began_after_the_pass_listed_payment_intents_waits_for_the_next_pass(
    stripe_emulator, emulator_control
):
    order = paid_order_on_a_customer()
    _payment_intents_listed_from(3600)
    fetches = _fetches(emulator_control)

    first = stripe_mirror_sync()

    assert first.errors == []
    assert first.mirrored["charges"] == 0
    assert _fetches(emulator_control) == fetches  # nothing fetched one by one
    assert not djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id).exists()
    StripeSyncCursor.objects.filter(resource="payment_intents").delete()

    second = stripe_mirror_sync()

    assert second.errors == []
    assert _fetches(emulator_control) == fetches
    assert djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id).customer is not None


def test_a_charge_not_of_the_last_minute_is_mirrored_at_once_fetching_what_it_refers_to(
    stripe_emulator, emulator_control
):
    emulator_control.advance_clock(120)  # Stripe's clock two minutes ahead of ours: never held back for that
    order = paid_order_on_a_customer()
    _payment_intents_listed_from(3600)
    fetches = _fetches(emulator_control)

    result = stripe_mirror_sync()

    assert result.errors == []
    assert djstripe_models.Charge.objects.get(payment_intent_id=order.stripe_payment_intent_id).customer is not None
    assert _fetches(emulator_control) > fetches
