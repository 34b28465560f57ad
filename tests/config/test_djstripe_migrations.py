"""dj-stripe's three migrations as one (config/djstripe_migrations, decision 0035)."""

from importlib import import_module
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

OURS = ("djstripe", "0001_squashed_0003_2_11")


def _ours():
    return import_module(f"config.djstripe_migrations.{OURS[1]}").Migration


def test_the_one_migration_replaces_exactly_the_migrations_the_installed_dj_stripe_ships():
    shipped = Path(import_module("djstripe").__file__).parent / "migrations"
    names = sorted(path.stem for path in shipped.glob("[0-9]*.py"))
    assert sorted(name for _, name in _ours().replaces) == names, (
        "dj-stripe's migrations changed: make config/djstripe_migrations again (its docstring says how)")


@pytest.mark.django_db
def test_a_fresh_database_records_dj_stripes_own_three_as_applied_too():
    applied = MigrationRecorder(connection).applied_migrations()
    assert OURS in applied
    assert all(replaced in applied for replaced in _ours().replaces)


@pytest.mark.django_db
def test_a_database_that_ran_dj_stripes_own_three_has_nothing_left_to_migrate():
    MigrationRecorder.Migration.objects.filter(app="djstripe", name=OURS[1]).delete()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    assert OURS in executor.loader.applied_migrations


@pytest.mark.django_db
def test_a_database_that_ran_none_of_dj_stripes_migrations_would_run_the_one():
    MigrationRecorder.Migration.objects.filter(app="djstripe").delete()
    executor = MigrationExecutor(connection)
    plan = [migration.app_label + "." + migration.name
            for migration, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())]
    assert plan[0] == "djstripe." + OURS[1]
    assert "djstripe.0002_2_10" not in plan
