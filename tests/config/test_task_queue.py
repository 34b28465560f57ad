"""The task queue's broker (config/heartbeat.py): a finished task's row goes in one statement."""

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from config.heartbeat import HeartbeatORM


@pytest.fixture
def transactions_opened(monkeypatch):
    """Each time Django turns autocommit off: the start of a transaction (BEGIN)."""
    opened = []
    original = BaseDatabaseWrapper.set_autocommit

    def set_autocommit(self, autocommit, *args, **kwargs):
        if not autocommit:
            opened.append(self.alias)
        return original(self, autocommit, *args, **kwargs)

    monkeypatch.setattr(BaseDatabaseWrapper, "set_autocommit", set_autocommit)
    return opened


@pytest.mark.django_db(transaction=True)
def test_acknowledging_a_finished_task_deletes_its_row_in_one_statement_without_a_transaction(
    transactions_opened,
):
    task = OrmQ.objects.create(key="backstop", payload="a task", lock=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        HeartbeatORM(list_key="backstop").acknowledge(task.id)

    assert not OrmQ.objects.filter(pk=task.id).exists()
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["DELETE"]
    assert transactions_opened == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_task_leaves_the_queue_too():
    task = OrmQ.objects.create(key="backstop", payload="a task", lock=timezone.now())

    HeartbeatORM(list_key="backstop").fail(task.id)

    assert not OrmQ.objects.filter(pk=task.id).exists()
