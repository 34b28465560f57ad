"""Django's PostgreSQL backend, emptying tables between transactional tests with DELETE.

A transactional test (live servers, gunicorn, the browser, threads) ends with Django's `flush`, which
on PostgreSQL is one TRUNCATE of every table: about a hundred tables and their indexes, each given
new files, 1 to 2 s per test on the shared machine, a hundred tests in the suite. The tables hold a
few rows by then, and DELETE empties them in a few milliseconds each. Every foreign key Django makes
on PostgreSQL is DEFERRABLE INITIALLY DEFERRED and the flush runs in one transaction, so the order of
the deletes does not matter: the keys are checked at its commit, on empty tables. Only the tests use
this (tests/settings.py); production's engine is config/postgresql/, which this extends.
"""

from django.conf import settings
from django.db.backends.postgresql import operations

from config.postgresql import base


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            # Not what pytest-django's flush asks for; Django's own statement does what these mean.
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        # The database cache's table too: it is no model's, so Django's flush leaves it, and a rate
        # limit's count left by one transactional test would hold back the next test's customer.
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
                for table in [*tables, *_cache_tables()]]


def _cache_tables() -> list[str]:
    return [cache["LOCATION"] for cache in settings.CACHES.values() if cache["BACKEND"].endswith("DatabaseCache")]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
