"""Indexes for the sweep's two questions (billing/selectors.py), mostly on dj-stripe's charge table.

dj-stripe owns the table, so its migrations cannot carry these; the SQL is plain enough for both
PostgreSQL and SQLite. Without them a steady-state sweep at a million charges would read the
whole table every minute, and a full check would read every charge's stripe_data (measured by
scripts/bench_reconcile.py; docs/reconcile.md#benchmark).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_safety_nets"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [
        # "Which charges changed since the last run?" (webhooks and the pull sync both touch it)
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS backstop_charge_updated_idx ON djstripe_charge (djstripe_updated)",
            "DROP INDEX IF EXISTS backstop_charge_updated_idx",
        ),
        # "Which succeeded charges belong to which PaymentIntent?" (the join to orders). It carries
        # every column the sweep's two questions read from a charge except stripe_data, so they
        # are answered from the index alone: a probe per open order, and one ordered pass over
        # all charges next to backstop_order_amounts_idx for a full check.
        migrations.RunSQL(
            [
                "DROP INDEX IF EXISTS backstop_charge_succeeded_pi_idx",  # an earlier draft of this one
                "CREATE INDEX IF NOT EXISTS backstop_charge_succeeded_cover_idx ON djstripe_charge"
                " (payment_intent_id, created, id, currency, amount, djstripe_id, djstripe_updated)"
                " WHERE status = 'succeeded'",
            ],
            "DROP INDEX IF EXISTS backstop_charge_succeeded_cover_idx",
        ),
        # "Which charges has Stripe refunded or disputed at all?" A few percent of them; the only
        # ones whose stripe_data the full check must read. Text comparisons, not CAST AS INTEGER:
        # an index expression that fails would make dj-stripe's write of that charge fail.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS backstop_charge_touched_idx ON djstripe_charge (payment_intent_id)"
            " WHERE status = 'succeeded'"
            " AND (CAST(stripe_data -> 'disputed' AS TEXT) = 'true'"
            " OR CAST(stripe_data -> 'refunded' AS TEXT) = 'true'"
            " OR CAST(stripe_data ->> 'amount_refunded' AS TEXT) <> '0')",
            "DROP INDEX IF EXISTS backstop_charge_touched_idx",
        ),
        # The orders the first question reads every run, with what it reads of them.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS backstop_order_open_idx ON billing_order"
            " (stripe_payment_intent_id, state, id, reference, held_since)"
            " WHERE state IN ('pending', 'processing', 'failed', 'paid', 'canceled', 'needs_review')",
            "DROP INDEX IF EXISTS backstop_order_open_idx",
        ),
        # The order's side of that pass: what it says was charged and refunded, by PaymentIntent.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS backstop_order_amounts_idx ON billing_order"
            " (stripe_payment_intent_id, currency, amount_cents, amount_refunded_cents)"
            " WHERE stripe_payment_intent_id IS NOT NULL",
            "DROP INDEX IF EXISTS backstop_order_amounts_idx",
        ),
    ]
