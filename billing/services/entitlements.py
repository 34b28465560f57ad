"""Billing's callers of accounts.access (decision D4): grant the time a paid order bought, take it
back on a refund, add days; accounts.access writes the Entitlement, billing writes the order's
timeline."""

from accounts import access
from accounts.models import Entitlement
from accounts.services import customer_account_ensure
from billing.email_kinds import Kind as EmailKind
from billing.models import Order
from billing.services.history import event_access_extended, event_access_granted, event_time_moved
from billing.services.outbox import _owe_once
from config.failpoints import failpoint


def _activate(order: Order, pi, *, actor: str, events: list, why: str, ids: dict):
    """Grant access for the paid order: one entitlement (unique per order) and one email.

    One payment buys one plan's length of time, whatever the customer already has: if their plan
    still runs, the new time starts where it ends (stacked, no day lost).
    """
    # Also locks the user: stacking cannot race.
    user = customer_account_ensure(email=order.email, full_name=order.full_name)
    entitlement = access.access_grant(user=user, order=order, plan=order.plan, paid_at=order.paid_at)
    starts_at = entitlement.starts_at
    failpoint("settle.after_entitlement")
    order.user = user
    events.append(event_access_granted(order, actor=actor, starts_at=starts_at, ends_at=entitlement.ends_at,
                                       why=why, stripe_ids=ids))
    _owe_once(order, EmailKind.CONFIRMATION, pi)
    failpoint("settle.after_outbox_row")


def _revoke_entitlement(order: Order, why: str):
    """Take back the time this order bought (accounts.access); time stacked after it moves up."""
    _entitlement, moved = access.access_revoke(order=order, why=why)
    _record_time_moved(moved, why="up after an earlier payment was refunded")


def _record_time_moved(moved, *, why: str):
    """On each order's timeline, where its time now falls after the periods were laid out again."""
    for entitlement in moved:
        event_time_moved(entitlement.order, starts_at=entitlement.starts_at, ends_at=entitlement.ends_at, why=why)


def entitlement_add_days(*, order_id: int, days: int, actor: str, reason: str, user=None) -> Entitlement:
    """More time on what this order bought (support's Extend, an outage): accounts.access adds the
    days, moves the periods after it along, and billing writes the order's timeline. The returned
    entitlement carries `access_until`, the end of all the customer's time.

    Runs in the caller's transaction (which holds the order's lock)."""
    entitlement = access.access_extend(order_id=order_id, days=days)
    _record_time_moved(entitlement.moved, why="along after an earlier period was extended")
    event_access_extended(entitlement.order, actor=actor, user=user, days=days, ends_at=entitlement.access_until,
                          ends_before=entitlement.access_until_before, reason=reason)
    return entitlement

