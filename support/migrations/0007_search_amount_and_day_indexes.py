"""Indexes for searching by an amount as printed and by a day (issue 15; support.selectors.console_search).

Each matches the SQL that search emits (scripts/bench_console_search.py prints the plans):

- an amount finds orders by what they asked OR what Stripe took: `amount_cents = X OR
  amount_received_cents = X`; 0004 indexed the first with created_at, this adds the second, so
  the planner ORs two index scans instead of reading every order;
- a day finds orders created OR paid in it: created_at has its own index, paid_at gets one;
- in the mirror, dj-stripe keeps a charge's amount in major units in a column of its own
  (`djstripe_charge.amount`, numeric): (amount, created) answers an amount, newest first, and an
  amount on a day; (created) answers a day. dj-stripe indexes neither.

Built CONCURRENTLY on PostgreSQL, as 0004 explains (no write to orders or the mirror waits on the
build); an INVALID index left by a failed build is dropped and rebuilt when the migration runs again.
"""

from django.db import migrations

INDEXES = [
    ("backstop_search_order_received_idx", "billing_order", "(amount_received_cents, created_at)"),
    ("backstop_search_order_paid_at_idx", "billing_order", "(paid_at)"),
    ("backstop_search_charge_amount_idx", "djstripe_charge", "(amount, created)"),
    ("backstop_search_charge_created_idx", "djstripe_charge", "(created)"),
]


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for name, table, definition in INDEXES:
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}")
            return
        for name, table, definition in INDEXES:
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)", [name])
            row = cursor.fetchone()
            if row and not row[0]:  # left behind by a concurrent build that failed
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {definition}")


def drop_indexes(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    with schema_editor.connection.cursor() as cursor:
        for name, _, _ in INDEXES:
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("support", "0006_replies_claims_views"),
        ("billing", "0006_stripe_amounts_refunds_dedupe"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
