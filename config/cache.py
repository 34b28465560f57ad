"""The cache every process shares (web workers and the task worker): Django's DatabaseCache, with a
counter that rate limits can rely on.

Django's DatabaseCache.incr() is the generic get-then-set: two requests at the same moment both
read 4 and both write 5 (django-ratelimit's check says so: "does not support atomic increment"),
and set() also resets the key's expiry to the default 5 minutes, so an hourly limit would forget
everything after five quiet minutes. This incr() adds without losing a concurrent count and
leaves the expiry alone: a read and a write that applies only if the row still holds what was read
(two statements, retried), or, inside a transaction or after a few collisions, under the row's lock.
On PostgreSQL the lock is the row's SELECT ... FOR UPDATE; on the demo's SQLite the transaction
itself holds the database's write lock (transaction_mode IMMEDIATE in settings).

Django's DatabaseCache also culls: past MAX_ENTRIES (300 by default) every write first deletes the
expired rows and then, if still too many, a third of the live ones, lowest keys first. A rate-limit
counter is a live key, so 500 requests for other addresses used to wipe a victim's count (and
django-q2's cluster heartbeat, whose key sorts first, so /readyz saw no cluster). Here culling only
ever deletes expired rows: the table holds every live key, one small row each, for at most its
timeout (an hour for the longest limit). The trade-off, chosen on purpose: a flood of distinct
addresses grows the table by one row per counted value until the window ends, bounded by the
requests the per-client limits let through, instead of silently forgetting counts.

Writes are one statement. Django's set() and add() count the whole table (to decide whether to
cull), read the key, then insert or update it: five statements with the transaction around them,
on every rate-limited request (issue 21 measured the count five times per purchase). Here set() is
an upsert, add() an upsert that only overwrites an expired row (atomic, where Django's read-then-
insert lets two callers both "add"), and expired rows are purged by a process at most once every
PURGE_EVERY_SECONDS (OPTIONS, default 60) on a write, not counted for on each one. MAX_ENTRIES no
longer means anything here.
"""

import base64
import contextlib
import pickle
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends import db
from django.db import DatabaseError, connections, models, router, transaction
from django.utils.timezone import now

# incr() outside a transaction: reads and conditional writes before it takes the row's lock instead.
INCR_TRIES_UNLOCKED = 3


class DatabaseCache(db.DatabaseCache):
    def __init__(self, table, params):
        super().__init__(table, params)
        options = params.get("OPTIONS", {})
        self._purge_every = float(options.get("PURGE_EVERY_SECONDS", 60))
        self._purged_at = None  # monotonic time of this process's last purge

    def _base_set(self, mode, key, value, timeout=db.DEFAULT_TIMEOUT):
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        if mode == "touch" or connection.vendor not in ("postgresql", "sqlite"):
            return super()._base_set(mode, key, value, timeout)
        timeout = self.get_backend_timeout(timeout)
        quote_name = connection.ops.quote_name
        table = quote_name(self._table)
        cache_key, value_, expires = quote_name("cache_key"), quote_name("value"), quote_name("expires")
        current = now().replace(microsecond=0)
        # As Django's backend writes it: naive "never", else aware or naive as USE_TZ says.
        zone = UTC if settings.USE_TZ else None
        expiry = datetime.max if timeout is None else datetime.fromtimestamp(timeout, tz=zone)
        params = [key, base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1"),
                  connection.ops.adapt_datetimefield_value(expiry.replace(microsecond=0))]
        # The table name comes from settings (quoted); key, value and times are parameters.
        sql = (f"INSERT INTO {table} ({cache_key}, {value_}, {expires}) VALUES (%s, %s, %s) "  # noqa: S608
               f"ON CONFLICT ({cache_key}) DO UPDATE SET {value_} = EXCLUDED.{value_}, {expires} = EXCLUDED.{expires}")
        if mode == "add":
            # Only over a row that has expired: a live key stays, and the caller learns it did not add.
            sql += f" WHERE {table}.{expires} < %s RETURNING {cache_key}"
            params.append(connection.ops.adapt_datetimefield_value(current))
        try:
            # A savepoint only inside a caller's transaction, so a failed write cannot break it; in
            # autocommit the one statement is its own transaction.
            with transaction.atomic(using=alias) if connection.in_atomic_block else contextlib.nullcontext(), \
                    connection.cursor() as cursor:
                self._purge_now_and_then(alias, cursor, current)
                cursor.execute(sql, params)
                return mode == "set" or cursor.fetchone() is not None
        except DatabaseError:
            return False  # as Django's backend: a failed cache write is a miss, not an error

    def _purge_now_and_then(self, alias, cursor, current):
        if self._purged_at is not None and time.monotonic() - self._purged_at < self._purge_every:
            return
        self._purged_at = time.monotonic()
        self._cull(alias, cursor, current, None)

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote_name = connection.ops.quote_name
        table = quote_name(self._table)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # The table name comes from settings (quoted); the key is a parameter, as in Django's own backend.
        value_, expires, cache_key = quote_name("value"), quote_name("expires"), quote_name("cache_key")
        select = f"SELECT {value_}, {expires} FROM {table} WHERE {cache_key} = %s"  # noqa: S608
        update = f"UPDATE {table} SET {value_} = %s WHERE {cache_key} = %s"  # noqa: S608
        if not connection.in_atomic_block:
            # Outside a transaction, first without one: read, then write only if the row still holds
            # what was read (two statements instead of BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT).
            # A count that changed meanwhile is read again; a key counted by many at once falls
            # back to the lock below after a few tries.
            with connection.cursor() as cursor:
                for _ in range(INCR_TRIES_UNLOCKED):
                    cursor.execute(select, [key])
                    row = cursor.fetchone()
                    value = self._incremented(connection, key, row, delta)
                    cursor.execute(update + f" AND {value_} = %s AND {expires} = %s", [value[1], key, row[0], row[1]])
                    if cursor.rowcount == 1:
                        return value[0]
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(select + lock, [key])
            value = self._incremented(connection, key, cursor.fetchone(), delta)
            cursor.execute(update, [value[1], key])
        return value[0]

    def _incremented(self, connection, key, row, delta):
        """The count in `row` plus `delta`, and as stored; ValueError if the key is missing or expired."""
        if row is None or self._expires(connection, row[1]) < now():
            raise ValueError(f"Key '{key}' not found")
        # Values in this table are written by this cache only, pickled, as DatabaseCache does.
        value = pickle.loads(base64.b64decode(connection.ops.process_clob(row[0]).encode())) + delta  # noqa: S301
        return value, base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    def _cull(self, db, cursor, now, num):
        # Expired rows only, never a live one (see the module's docstring).
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        expires = connection.ops.quote_name("expires")
        cursor.execute(f"DELETE FROM {table} WHERE {expires} < %s",  # noqa: S608
                       [connection.ops.adapt_datetimefield_value(now)])

    @staticmethod
    def _expires(connection, value):
        # As DatabaseCache.get_many reads it: aware or naive depending on USE_TZ and the database.
        expression = models.Expression(output_field=models.DateTimeField())
        for converter in connection.ops.get_db_converters(expression) + expression.get_db_converters(connection):
            value = converter(value, expression, connection)
        return value
