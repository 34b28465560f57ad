"""Indexes for the support console's search box (support.selectors.console_search).

Each one matches the SQL Django emits for one kind of search, so the planner can use it; without
them most kinds read a whole table (docs/support-console.md#search-benchmark has the numbers at a
million orders, from scripts/bench_console_search.py):

- part of an email or a name, any case: `UPPER("email"::text) LIKE UPPER('%...%')` is what
  `icontains` becomes on PostgreSQL; a trigram GIN index on exactly that expression (pg_trgm)
  answers it for any fragment of 3 characters or more;
- card last 4 in the mirror: `KT("stripe_data__payment_method_details__card__last4")` becomes
  `stripe_data #>> '{payment_method_details,card,last4}'` (not `-> 'payment_method_details' ->
  'card' ->> 'last4'`, which is another expression and would not be used), with `created` for the
  newest first;
- an amount: nearly every order has $249.00, and the newest 50 are wanted; (amount_cents,
  created_at) reads just those, and also answers an amount nobody paid without a full scan;
- a Stripe id: the orders' side asks for the PaymentIntent, charge or customer id in one OR, and
  only the first two had an index (unique), so the customer id needs one too.

dj-stripe owns djstripe_charge, so its migrations cannot carry these. The trigram and JSON ones
are PostgreSQL-only; the demo's SQLite gets the plain ones.

On PostgreSQL the indexes are built CONCURRENTLY (the migration is not atomic): building them on a
million orders and charges takes tens of seconds, during which a plain CREATE INDEX would block
every write to the tables (checkouts, and dj-stripe's webhook writes to djstripe_charge). A build
that failed half way leaves an INVALID index behind; running the migration again drops and
rebuilds it.

pg_trgm is a trusted extension (PostgreSQL 13+): a user with CREATE on the database (its owner,
for instance) can create it, and a superuser always can. If the application's database user
cannot, a DBA runs `CREATE EXTENSION pg_trgm;` in the database once, and the migration then only
finds it there.
"""

from django.db import DatabaseError, migrations

# (name, table, what follows ON table): plain SQL that PostgreSQL and SQLite both accept.
PORTABLE = [
    ("backstop_search_order_amount_idx", "billing_order", "(amount_cents, created_at)"),
    ("backstop_search_order_customer_idx", "billing_order", "(stripe_customer_id)"),
]
POSTGRESQL = [
    ("backstop_search_order_email_trgm_idx", "billing_order", "USING gin ((UPPER(email::text)) gin_trgm_ops)"),
    ("backstop_search_order_name_trgm_idx", "billing_order", "USING gin ((UPPER(full_name::text)) gin_trgm_ops)"),
    ("backstop_search_charge_last4_idx", "djstripe_charge",
     "((stripe_data #>> '{payment_method_details,card,last4}'), created)"),
]


def _ensure_pg_trgm(cursor):
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if cursor.fetchone():
        return
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        raise RuntimeError(
            "The support console's search needs the pg_trgm extension, and this database user may not "
            "create it. Ask the DBA to run `CREATE EXTENSION pg_trgm;` in this database (once), then "
            f"migrate again. PostgreSQL said: {exc}"
        ) from exc


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for name, table, definition in PORTABLE:
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}")
            return
        _ensure_pg_trgm(cursor)
        for name, table, definition in PORTABLE + POSTGRESQL:
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)", [name])
            row = cursor.fetchone()
            if row and not row[0]:  # left behind by a concurrent build that failed
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {definition}")
        # The planner picks between these and reading orders newest first by how common the text
        # is, from the statistics ANALYZE keeps on each index expression; until the tables are next
        # analyzed (autovacuum waits for 10% of the rows to change) it would guess, and guess that a
        # rare 3-5 letter fragment is common: a whole-table read, ~0.7 s at a million orders.
        cursor.execute("ANALYZE billing_order")
        cursor.execute("ANALYZE djstripe_charge")


def drop_indexes(apps, schema_editor):
    connection = schema_editor.connection
    concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
    names = [name for name, _, _ in PORTABLE + (POSTGRESQL if connection.vendor == "postgresql" else [])]
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")
    # pg_trgm stays: other things may use it, and dropping it may need a superuser.


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("support", "0003_inbound_messages"),
        ("billing", "0004_outbox_password_reset"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
