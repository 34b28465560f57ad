"""Accounts' writes to the user row, for the apps above that act on a customer's settings."""

from django.contrib.auth import get_user_model


def renewal_reminders_stop(*, user) -> bool:
    """Turn off the customer's renewal emails; True if they were on (a repeat changes nothing)."""
    changed = get_user_model().objects.filter(pk=user.pk, renewal_reminders=True).update(renewal_reminders=False)
    user.renewal_reminders = False
    return bool(changed)
