"""Check that config/djstripe_migrations builds the same PostgreSQL schema as dj-stripe's own migrations.

Run it after regenerating that package for a new dj-stripe (docs/decisions/0035-dj-stripe-migrations-as-one.md):

    scripts/with-postgres.sh .venv/bin/python scripts/check_djstripe_migrations.py

It migrates two fresh databases on the server in DATABASE_URL, one through dj-stripe's own
migrations and one through ours, and compares every djstripe_* table's columns (name, type,
nullability, default), indexes and constraints. Column order is left out: a column that a migration
adds goes last, the same column in a CREATE TABLE goes where the model has it, and nothing of ours
reads columns by position. Exit status 0 when they match, 1 with the differences when not.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]

MIGRATE = """
import django
from django.conf import settings
from django.core.management import call_command

if {original!r}:
    settings.MIGRATION_MODULES = {{}}  # dj-stripe's own migrations, as installed
django.setup()
call_command("migrate", "djstripe", interactive=False, verbosity=0, skip_checks=True)
"""

SCHEMA = {
    "column": """
        SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision,
               numeric_scale, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public' AND table_name LIKE 'djstripe%%'""",
    "index": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename LIKE 'djstripe%%'""",
    "constraint": """
        SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
        WHERE rel.relname LIKE 'djstripe%%'""",
}


def database_url(name: str) -> str:
    """DATABASE_URL with another database's name (its options, if any, kept), as crash_matrix.py names lanes."""
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def migrated(name: str, *, original: bool) -> set[tuple]:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    started = time.monotonic()
    env = {**os.environ, "DATABASE_URL": database_url(name), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "-c", MIGRATE.format(original=original)], cwd=ROOT, env=env, check=True)
    print(f"{name}: migrated through {'dj-stripe' if original else 'config'}'s migrations in "
          f"{time.monotonic() - started:.1f} s")
    with psycopg.connect(database_url(name)) as db:
        schema = {(kind, *row) for kind, query in SCHEMA.items() for row in db.execute(query)}
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        db.execute(f'DROP DATABASE "{name}"')
    return schema


def main() -> int:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL server (scripts/with-postgres.sh does).", file=sys.stderr)
        return 2
    theirs = migrated("djstripe_check_theirs", original=True)
    ours = migrated("djstripe_check_ours", original=False)
    tables = {row[1] for row in theirs if row[0] == "column"}
    print(f"{len(tables)} tables, {len(theirs)} columns, indexes and constraints compared")
    for label, rows in (("only through dj-stripe's migrations", theirs - ours),
                        ("only through ours", ours - theirs)):
        for row in sorted(rows, key=str):
            print(f"{label}: {row}")
    return 0 if theirs == ours else 1


if __name__ == "__main__":
    sys.exit(main())
