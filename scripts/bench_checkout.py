"""Server-side cost of the checkout and settle paths, against the local Stripe emulator.

Prints p50/p95 wall time and SQL query counts for:
  checkout    order_create + order_prepare_payment (one Stripe call for an address's first order:
              the PaymentIntent; its second also makes the Customer, decision 0034)
  settle      order_settle on a freshly paid order (one Stripe call + activation)
  settle-db   the same activation with the PaymentIntent passed in: our own overhead only
  resettle    order_settle on an order that is already active (the common repeat)

Run it on PostgreSQL (the production database):
    scripts/with-postgres.sh .venv/bin/python scripts/bench_checkout.py [--orders 200]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def count(ctx):
    """SQL statements, not counting BEGIN/COMMIT (which Django logs as queries on PostgreSQL)."""
    return sum(1 for q in ctx.captured_queries if q["sql"] not in ("BEGIN", "COMMIT"))


def report(name, timings, queries):
    ms = [t * 1000 for t in timings]
    print(f"{name:<10} n={len(ms):<4} p50={percentile(ms, 50):7.2f} ms  p95={percentile(ms, 95):7.2f} ms  "
          f"mean={statistics.mean(ms):7.2f} ms  SQL statements={max(queries)} (max) {min(queries)} (min)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    import stripe
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_q.conf import Conf

    from billing import services, stripe_api
    from stripe_emulator.testing import EmulatorProcess

    Conf.SYNC = False  # enqueue the confirmation email; sending it is the worker's job, not this path's
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    print("migrating the database…", flush=True)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    plan = services.plan_ensure_default()

    with EmulatorProcess(log_level="ERROR") as emulator:
        settings.STRIPE_API_BASE = emulator.api_base
        stripe.api_base, stripe.api_key = emulator.api_base, emulator.secret_key
        client = emulator.client()

        checkout_t, checkout_q, orders = [], [], []
        for i in range(args.orders):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                order = services.order_create(plan=plan, email=f"bench{i}@example.com")
                services.order_prepare_payment(order=order)
                checkout_t.append(time.perf_counter() - started)
            checkout_q.append(count(ctx))
            order.refresh_from_db()
            orders.append(order)
        report("checkout", checkout_t, checkout_q)

        # Pay every order at Stripe, as the browser would.
        for order in orders:
            client.v1.payment_intents.confirm(order.stripe_payment_intent_id,
                                              params={"payment_method": "pm_card_visa",
                                                      "return_url": "http://x/"})

        half = len(orders) // 2
        settle_t, settle_q, stripe_t = [], [], []
        for order in orders[:half]:
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                services.order_settle(order_id=order.id, actor="bench")
                settle_t.append(time.perf_counter() - started)
            settle_q.append(count(ctx))
            started = time.perf_counter()
            stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
            stripe_t.append(time.perf_counter() - started)
        report("settle", settle_t, settle_q)
        report("stripe-rt", stripe_t, [0])

        db_t, db_q = [], []
        for order in orders[half:]:
            pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                services.order_settle(order_id=order.id, actor="bench", payment_intent=pi)
                db_t.append(time.perf_counter() - started)
            db_q.append(count(ctx))
        report("settle-db", db_t, db_q)

        again_t, again_q = [], []
        for order in orders[:half]:
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                services.order_settle(order_id=order.id, actor="bench")
                again_t.append(time.perf_counter() - started)
            again_q.append(count(ctx))
        report("resettle", again_t, again_q)

    print("\ntarget: settle <= 10 queries and < 15 ms at p50 beyond the Stripe round-trip "
          "(compare settle-db p50, or settle p50 minus stripe-rt p50)")


if __name__ == "__main__":
    main()
