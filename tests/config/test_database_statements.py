"""How the application talks to PostgreSQL (decision 0033): parameters bound on the server, and a
statement a connection runs again and again prepared once, except behind transaction pooling."""

import pytest
from django.db import connections

from billing.models import Order
from tests.config.test_settings_from_env import run_manage

PRINT_OPTIONS = ("from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
                 "print(o.get('server_side_binding'), o.get('prepare_threshold'))")


@pytest.fixture
def other_connection():
    """A connection of its own, as a web or worker process holds one: nothing prepared on it yet."""
    other = connections.create_connection("default")
    yield other
    other.close()


def prepared_on(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_statement_a_connection_runs_again_and_again_is_prepared(other_connection):
    before = prepared_on(other_connection)

    for _ in range(6):
        list(Order.objects.using(other_connection.alias).filter(reference="BK-NONE").values_list("id"))
        with other_connection.cursor() as cursor:
            cursor.execute("SELECT id FROM billing_order WHERE reference = %s", ["BK-NONE"])

    assert prepared_on(other_connection) > before


def test_production_binds_parameters_on_the_server_and_prepares_a_statement_run_five_times():
    result = run_manage("shell", "--no-imports", "-c", PRINT_OPTIONS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "5"]


def test_behind_transaction_pooling_no_statement_is_prepared():
    result = run_manage("shell", "--no-imports", "-c", PRINT_OPTIONS, env_overrides={"DB_TRANSACTION_POOLING": "true"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "None"]
