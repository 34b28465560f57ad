"""The chaos harness's report arithmetic (scripts/load/chaos.py), on rows made by hand: no stack."""

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "load"))
import chaos


def test_the_same_seed_gives_the_same_plan_with_a_kill_every_five_seconds():
    plan = chaos.plan_faults(duration=150, seed=3)
    assert plan == chaos.plan_faults(duration=150, seed=3)
    assert plan != chaos.plan_faults(duration=150, seed=4)
    counts = Counter(f["fault"] for f in plan)
    assert 27 <= counts["gunicorn worker SIGKILL"] <= 33
    assert counts["gunicorn master SIGKILL (whole gunicorn)"] == counts["qcluster tree SIGKILL"] == 1
    restart = next(f for f in plan if f["fault"] == "restart web")
    assert restart["at"] == 150 * 0.4 + 5
    assert all(f["spec"]["count"] >= 1 for f in plan if "spec" in f)


def _payments():
    pis = [{"id": "pi_1", "status": "succeeded", "created": 1000, "metadata": {"reference": "BK-A"}},
           {"id": "pi_2", "status": "requires_payment_method", "created": 1000, "metadata": {"reference": "BK-B"}},
           {"id": "pi_3", "status": "succeeded", "created": 1000, "metadata": {}}]
    charges = [{"payment_intent": "pi_1", "status": "succeeded", "paid": True}]
    events = [{"type": "payment_intent.succeeded", "created": 1010, "data": {"object": {"id": "pi_1"}}}]
    return chaos.stripe_payments(pis, charges, events)


def test_only_backstop_payments_that_succeeded_count_with_the_second_they_did():
    assert _payments() == {"BK-A": [{"id": "pi_1", "created": 1010, "charges": 1}]}


def test_a_not_charged_page_after_the_payment_is_a_false_word_and_the_pay_form_before_it_is_not():
    payments = _payments()
    observations = [
        {"step": "GET /checkout/[token]/pay/", "t": 1009.9, "t_end": 1010.1, "ref": "BK-A", "pi": "pi_1",
         "page": "pay form", "code": "pay_form", "says_not_charged": True},
        {"step": "Stripe.js POST confirm", "t": 1010.2, "t_end": 1010.4, "ref": "BK-A", "pi": "pi_1",
         "pi_status": "succeeded"},
        {"step": "GET /orders/[token]/ (return)", "t": 1010.5, "t_end": 1010.6, "ref": "BK-A", "pi": "pi_1",
         "page": "status page", "code": "not_charged", "says_not_charged": True},
        {"step": "GET /api/orders/[token]/status", "t": 1012.5, "t_end": 1012.6, "ref": "BK-A", "pi": "pi_1",
         "page": "status api", "code": "active", "says_not_charged": False},
    ]
    moments = chaos.paid_moments(payments, observations)
    assert moments["pi_1"] == (1010.2, 1010.4)
    definite, possible = chaos.false_words(observations, payments, moments)
    assert [(d["ref"], d["code"]) for d in definite] == [("BK-A", "not_charged")]
    assert possible == []


def test_each_paid_order_is_credited_to_the_net_that_made_it_active():
    orders = [
        {"id": 1, "reference": "BK-A", "state": "active", "paid_at": 1011.0, "attention_reason": "",
         "held_since": None},
        {"id": 2, "reference": "BK-B", "state": "paid", "paid_at": 1011.0, "attention_reason": "",
         "held_since": None},
        {"id": 3, "reference": "BK-C", "state": "pending", "paid_at": None, "attention_reason": "",
         "held_since": None},
    ]
    events = [
        {"order_id": 1, "at": 1011.0, "actor": "sweep", "to_state": "paid", "reason": "charged in Stripe"},
        {"order_id": 1, "at": 1012.0, "actor": "sweep", "to_state": "active", "reason": "Access granted"},
        {"order_id": 2, "at": 1011.0, "actor": "webhook", "to_state": "paid", "reason": "payment_intent.succeeded"},
    ]
    payments = {"BK-A": [{"id": "pi_1", "created": 1010, "charges": 1}],
                "BK-B": [{"id": "pi_2", "created": 1010, "charges": 1}]}
    moments = {"pi_1": (1010, 1010.5), "pi_2": (1010, 1011)}
    report = chaos.convergence(orders, events, moments, payments, final_sweep_at=2000)
    assert report["paid_orders"] == 2
    assert report["made_active_by"] == {"sweep (scheduled, every minute)": 1}
    assert report["payment_noticed_by"] == {"sweep (scheduled, every minute)": 1, "webhook": 1}
    assert report["needed_the_sweep"] == ["BK-A"]
    assert report["payment_to_active_seconds"]["max"] == 1.5
    assert [n["ref"] for n in report["not_converged"]] == ["BK-B"]


def test_money_invariants_name_the_orders_that_break_them():
    orders = [{"reference": "BK-A", "state": "active", "paid_at": 1.0},
              {"reference": "BK-B", "state": "pending", "paid_at": None}]
    payments = {"BK-A": [{"id": "pi_1", "charges": 2}], "BK-B": [{"id": "pi_2", "charges": 1}],
                "BK-Z": [{"id": "pi_9", "charges": 1}]}
    found = chaos.money_invariants(orders, payments, confirmations={"BK-A": 2}, entitlements={"BK-A": 1})
    assert found["charged_twice_same_payment"] == ["pi_1"]
    assert found["emailed_twice"] == ["BK-A"]
    assert found["charged_no_order"] == ["BK-Z"]
    assert found["charged_order_not_paid"] == ["BK-B"]
    assert found["active_without_one_entitlement"] == found["paid_not_active"] == []
