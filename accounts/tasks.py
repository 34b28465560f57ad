"""django-q2 task entry points: call one function of accounts, nothing more."""

from accounts import access, webhooks


def deliver_access_events(user_id: int):
    return webhooks.access_deliveries_send(user_id=user_id)


def dispatch_access_events():
    return webhooks.access_deliveries_dispatch_due()


def mark_access_ended():
    return {"ended": access.access_ends_mark()}
