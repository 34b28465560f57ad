"""The connection health check (config/postgresql/base.py): a round trip, and no statement.

Observed (issue 21): `SELECT 1` ran about ten times per purchase, once per request and per task, the
most frequent statement in PostgreSQL's statistics.
"""

import time

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_connection():
    """A second connection to the test database, as a web or worker process holds one."""
    other = connections.create_connection("default")
    other.ensure_connection()
    yield other
    other.close()


def backend_pid(wrapper):
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_query_of(pid):
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row[0] if row else None


def test_the_health_check_finds_an_open_connection_usable(other_connection):
    assert other_connection.is_usable() is True


def test_the_health_check_sends_the_server_an_empty_query_not_a_statement(other_connection):
    pid = backend_pid(other_connection)

    other_connection.is_usable()

    assert last_query_of(pid) == ""


def test_the_health_check_finds_a_connection_the_server_closed_unusable(other_connection):
    pid = backend_pid(other_connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while last_query_of(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # a wait on a condition: the backend gone from pg_stat_activity

    assert other_connection.is_usable() is False
