"""Django's PostgreSQL backend, its connection health check made with an empty query.

With CONN_HEALTH_CHECKS a persistent connection is checked before the first query of each request
and each task, so that one PostgreSQL closed meanwhile (a restart, a failover, a timeout) is replaced
instead of failing that request. Django's check is `SELECT 1`: a statement the server parses, plans
and runs in a snapshot of its own, about ten per purchase across the web and the worker (issue 21).
An empty query is the same round trip, and as sure a test of the connection, but the server answers
it at once, with nothing to parse, plan or run: psycopg's own pool checks its connections this way
(`psycopg_pool.ConnectionPool.check_connection`).
"""

from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import Database


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        if self.connection is None:
            return False
        try:
            self.connection.execute("")
        except Database.Error:
            return False
        return True
