"""Accounts' writes to the user row, for the apps above: the account a first payment makes, a customer's settings."""

from django.contrib.auth import get_user_model


def renewal_reminders_stop(*, user) -> bool:
    """Turn off the customer's renewal emails; True if they were on (a repeat changes nothing)."""
    changed = get_user_model().objects.filter(pk=user.pk, renewal_reminders=True).update(renewal_reminders=False)
    user.renewal_reminders = False
    return bool(changed)


def customer_account_ensure(*, email: str, full_name: str):
    """The customer's account, created on their first purchase; one statement either way.

    An upsert (INSERT … ON CONFLICT (email) DO UPDATE … RETURNING) rather than select-then-insert:
    two orders for the same address may activate concurrently, and this cannot race. It also
    locks the row for the caller's transaction.
    """
    User = get_user_model()
    (upserted,) = User.objects.bulk_create(
        [User(email=email, full_name=full_name, password="!")],
        update_conflicts=True, unique_fields=["email"], update_fields=["email"],
    )
    # The upsert returns only the id, and an existing account keeps its own name and password, which
    # the object built above does not have: those two are left deferred (Django reads a deferred
    # field from the row when it is first asked for), so the object never says what the row does not,
    # and the money path, which never asks, pays no extra statement.
    for built_not_stored in ("full_name", "password"):
        del upserted.__dict__[built_not_stored]
    return upserted
