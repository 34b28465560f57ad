"""The cache every process shares (web workers and the task worker): Django's DatabaseCache, with a
counter that rate limits can rely on.

Django's DatabaseCache.incr() is the generic get-then-set: two requests at the same moment both
read 4 and both write 5 (django-ratelimit's check says so: "does not support atomic increment"),
and set() also resets the key's expiry to the default 5 minutes, so an hourly limit would forget
everything after five quiet minutes. This incr() locks the row, adds, and leaves the expiry alone.
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
"""

import base64
import pickle

from django.core.cache.backends import db
from django.db import connections, models, router, transaction
from django.utils.timezone import now


class DatabaseCache(db.DatabaseCache):
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
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(select + lock, [key])
            row = cursor.fetchone()
            if row is None or self._expires(connection, row[1]) < now():
                raise ValueError(f"Key '{key}' not found")
            # Values in this table are written by this cache only, pickled, as DatabaseCache does.
            value = pickle.loads(base64.b64decode(connection.ops.process_clob(row[0]).encode())) + delta  # noqa: S301
            cursor.execute(update, [base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1"), key])
        return value

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
