"""Sessions: each write is one statement, and a taken key is still never shared."""

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.sessions import SessionStore

# Outside a test transaction, as a request runs: the single-statement path is the one outside any.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_session_is_stored_with_one_statement():
    store = SessionStore()
    store["billing:browser"] = "abc"

    with CaptureQueriesContext(connection) as queries:
        store.save()

    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
    assert SessionStore(store.session_key)["billing:browser"] == "abc"


def test_a_changed_session_is_written_with_one_statement():
    store = SessionStore()
    store["n"] = 1
    store.save()
    store = SessionStore(store.session_key)
    store["n"] = 2
    store.load()

    with CaptureQueriesContext(connection) as queries:
        store.save()

    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert SessionStore(store.session_key)["n"] == 2


def test_a_key_already_taken_is_refused_so_create_draws_another():
    first = SessionStore()
    first["who"] = "first"
    first.save()
    second = SessionStore()
    second._session_key = first.session_key
    second["who"] = "second"

    with pytest.raises(CreateError):
        second.save(must_create=True)

    assert SessionStore(first.session_key)["who"] == "first"


def test_a_session_deleted_meanwhile_is_not_written_back():
    store = SessionStore()
    store["n"] = 1
    store.save()
    Session.objects.filter(session_key=store.session_key).delete()
    store["n"] = 2

    with pytest.raises(UpdateError):
        store.save()

    assert not Session.objects.exists()
