"""Indexes on dj-stripe's charge table for the sweep's two questions.

dj-stripe owns the table, so its migrations cannot carry these; the SQL is plain enough for both
PostgreSQL and SQLite. Without them a steady-state sweep at a million charges would read the
whole table every minute.
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
        # "Which succeeded charges belong to which PaymentIntent?" (the join to orders)
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS backstop_charge_succeeded_pi_idx ON djstripe_charge (payment_intent_id, created)"
            " WHERE status = 'succeeded'",
            "DROP INDEX IF EXISTS backstop_charge_succeeded_pi_idx",
        ),
    ]
