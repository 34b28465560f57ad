"""Django's database sessions, each write one statement (SESSION_ENGINE = "config.sessions").

Django's backend asks whether a new random key is taken (a SELECT) before inserting it, and wraps
every write in a transaction of its own (BEGIN, INSERT or UPDATE, COMMIT), so that a taken key's
IntegrityError cannot break a caller's transaction: five statements for the session a checkout
starts and three for each change after. A customer's purchase writes two (issue 21).

Here, outside any transaction, the write is the one statement, which is atomic on its own: an
INSERT of a key that is taken fails, save(must_create=True) raises CreateError, and create() draws
another key, as Django's loop does (32 random characters: a repeat is not expected, and would only
cost a retry), so nothing asks first. Inside a caller's transaction Django's own save() runs, its
savepoint keeping that transaction usable.
"""

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, connections, router
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    def _get_new_session_key(self):
        # Not checked against the table: the INSERT refuses a taken key and create() tries another.
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        using = router.db_for_write(self.model)
        if connections[using].in_atomic_block:
            return super().save(must_create=must_create)
        obj = self.create_model_instance(self._get_session(no_load=must_create))
        try:
            obj.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise
