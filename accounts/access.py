"""Who has paid access, and every change to it: the one module that writes Entitlement rows.

Billing calls it when a payment is settled (grant) or refunded (revoke) and when support adds days
(extend); a scheduled task marks the ends (`access_ends_mark`). It imports neither billing nor
support (tests/test_app_dependencies.py): orders and plans arrive as model instances, and billing
writes its own timeline (OrderEvents) from what these functions return.

Every change is told to the product behind the shop in two ways, both from here:
- Django signals (`access_granted`, `access_extended`, `access_revoked`, `access_ended`), sent once
  the transaction commits, for code in this same project;
- a signed webhook (accounts/webhooks.py): its delivery row is written in the same transaction as
  the change, so a change that commits is delivered at least once, and one that rolls back never is.

The writers run inside the caller's transaction and take the customer's row lock, so two changes to
one customer's time (two payments settling at once, a refund during an Extend) happen one after
the other.
"""

import math
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.dispatch import Signal
from django.utils import timezone

from accounts import webhooks
from accounts.models import Entitlement
from accounts.periods import add_months, lay_end_to_end

# Each is sent with `user`, `entitlement` (the period the change is about) and `access_until` (when
# the customer's paid time now ends; None if it has), after the change has committed.
access_granted = Signal()
access_extended = Signal()
access_revoked = Signal()
access_ended = Signal()

SIGNALS = {
    "access.granted": access_granted,
    "access.extended": access_extended,
    "access.revoked": access_revoked,
    "access.ended": access_ended,
}


# --- Reads -----------------------------------------------------------------------------------


def access_until(user, *, now: datetime | None = None) -> datetime | None:
    """When the customer's paid time runs out, if it has not yet: the latest end among their
    periods still in force. Periods are laid end to end, so there is no gap before it.
    `user` is a User or its id."""
    now = now or timezone.now()
    return (Entitlement.objects.filter(user=user, revoked_at__isnull=True, ends_at__gt=now)
            .aggregate(end=Max("ends_at"))["end"])


def has_access(user) -> bool:
    """Does this person have paid access right now? False for anyone not signed in."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return access_until(user) is not None


def access_periods(user) -> list[Entitlement]:
    """The customer's paid periods still in force (refunded ones are not), in the order they run."""
    return list(Entitlement.objects.filter(user=user, revoked_at__isnull=True)
                .select_related("plan").order_by("starts_at", "id"))


def access_summary(user, *, now: datetime | None = None) -> dict:
    """What the product is told about one customer: whether they have access, on which plan, until
    when, and their periods. The whole state, not a change, so a late or repeated message cannot
    move the product backwards. Times as ISO 8601 strings in UTC."""
    now = now or timezone.now()
    periods = access_periods(user)
    until = max((p.ends_at for p in periods if p.ends_at > now), default=None)
    current = next((p for p in periods if p.starts_at <= now < p.ends_at), None)
    return {
        "email": user.email,
        "has_access": until is not None,
        "plan": _plan(current.plan) if current else None,
        "access_until": _iso(until),
        "periods": [_period(p) for p in periods],
    }


def _plan(plan) -> dict:
    return {"code": plan.code, "name": plan.name}


def _period(entitlement: Entitlement) -> dict:
    return {"plan": _plan(entitlement.plan), "starts_at": _iso(entitlement.starts_at),
            "ends_at": _iso(entitlement.ends_at)}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


# --- Writes ----------------------------------------------------------------------------------


def _lock_user(user_id: int):
    get_user_model().objects.select_for_update().filter(pk=user_id).first()


def access_grant(*, user, order, plan, paid_at: datetime) -> Entitlement:
    """The time one paid order buys: one plan's length, starting when it was paid or, if the
    customer's plan still runs then, where it ends (stacked, no day lost).

    The caller holds the customer's row lock (billing's account upsert takes it). The database
    allows one period per order, so a second grant for the same order cannot insert."""
    starts_at = max(paid_at, access_until(user, now=paid_at) or paid_at)
    entitlement = Entitlement.objects.create(user=user, order=order, plan=plan, starts_at=starts_at,
                                             ends_at=add_months(starts_at, plan.duration_months))
    # Laid after every period still running when it was paid, so it ends last: once committed, the
    # customer's access runs until its end (or has run out, for a payment adopted long after). The
    # customer's lock keeps any other grant out until then: known without reading it back.
    _announce("access.granted", entitlement,
              until=lambda: entitlement.ends_at if entitlement.ends_at > timezone.now() else None)
    return entitlement


def access_revoke(*, order, why: str) -> tuple[Entitlement | None, list[Entitlement]]:
    """Take back the time this order bought, and only that: periods stacked after it move up.
    Returns the revoked period (None if there was none in force) and the periods that moved."""
    entitlement = Entitlement.objects.filter(order=order, revoked_at__isnull=True).select_related("user").first()
    if entitlement is None:
        return None, []
    _lock_user(entitlement.user_id)
    entitlement.revoked_at, entitlement.revoked_reason = timezone.now(), why[:200]
    entitlement.save(update_fields=["revoked_at", "revoked_reason"])
    moved = access_restack(user_id=entitlement.user_id, after_id=entitlement.id)
    _announce("access.revoked", entitlement)
    return entitlement, moved


def access_restack(*, user_id: int, after_id: int) -> list[Entitlement]:
    """Lay the customer's periods granted after `after_id` end to end again, after those granted up
    to it (which stay where they are): time moves up after a refund, along after an extension.
    Returns the periods that moved.

    Depends only on the periods themselves (not on when it runs), so repeating it changes nothing.
    The caller holds the customer's row lock."""
    now = timezone.now()
    chain = list(Entitlement.objects.filter(user_id=user_id, revoked_at__isnull=True)
                 .select_related("order", "plan").order_by("id"))
    kept = [e.ends_at for e in chain if e.id <= after_id]
    later = [e for e in chain if e.id > after_id]
    periods = lay_end_to_end([(e.order.paid_at or e.starts_at, e.plan.duration_months, e.extra_days) for e in later],
                             after=max(kept) if kept else None)
    moved = []
    for entitlement, (starts_at, ends_at) in zip(later, periods, strict=True):
        if (starts_at, ends_at) != (entitlement.starts_at, entitlement.ends_at):
            entitlement.starts_at, entitlement.ends_at = starts_at, ends_at
            if ends_at > now:
                entitlement.ended_at = None  # its end lies ahead again: mark it when it comes
            entitlement.save(update_fields=["starts_at", "ends_at", "ended_at"])
            moved.append(entitlement)
    return moved


def access_extend(*, order_id: int, days: int) -> Entitlement:
    """More time on what this order bought (support's Extend, an outage): the days are added to its
    period, and every period stacked after it moves along by as much, so the customer's paid time
    ends `days` later. If all their paid time has already run out, the days count from now.

    Runs in the caller's transaction. The returned period carries `access_until` (the end of all
    the customer's time now), `access_until_before` and `moved` (the later periods that moved)."""
    entitlement = (Entitlement.objects.select_for_update(of=("self",)).filter(order_id=order_id)
                   .select_related("user").first())
    if entitlement is None or entitlement.revoked_at is not None:
        raise ValueError("This order has no active access to extend.")
    _lock_user(entitlement.user_id)
    now = timezone.now()
    until_before = access_until(entitlement.user_id, now=now)
    lapsed = 0 if until_before else max(0, math.ceil((now - entitlement.ends_at).total_seconds() / 86400))
    entitlement.extra_days += days + lapsed
    entitlement.ends_at += timedelta(days=days + lapsed)
    if entitlement.ends_at > now:
        entitlement.ended_at = None
    entitlement.save(update_fields=["extra_days", "ends_at", "ended_at"])
    entitlement.moved = access_restack(user_id=entitlement.user_id, after_id=entitlement.id)
    entitlement.access_until_before = until_before
    entitlement.access_until = access_until(entitlement.user_id, now=now)
    _announce("access.extended", entitlement)
    return entitlement


def access_ends_mark(*, now: datetime | None = None, limit: int = 500) -> int:
    """Mark every period that has run out, once; when a customer's last one has, announce
    `access.ended`. Run by the schedule every few minutes (accounts/schedules.py); safe to repeat
    and to run twice at once (each customer under their row lock). Returns how many customers'
    access ended."""
    now = now or timezone.now()
    due = Entitlement.objects.filter(revoked_at__isnull=True, ended_at__isnull=True, ends_at__lte=now)
    user_ids = sorted(set(due.values_list("user_id", flat=True)[:limit]))
    ended = 0
    for user_id in user_ids:
        with transaction.atomic():
            _lock_user(user_id)
            periods = list(due.filter(user_id=user_id).select_related("user", "plan").order_by("ends_at"))
            if not periods:
                continue  # marked a moment ago by another run
            Entitlement.objects.filter(pk__in=[p.pk for p in periods]).update(ended_at=now)
            if access_until(user_id, now=now) is None:
                _announce("access.ended", periods[-1], now=now)
                ended += 1
    return ended


def _announce(event_type: str, entitlement: Entitlement, *, now: datetime | None = None, until=None):
    """Tell the product: a webhook delivery row now (same transaction), the signal after commit.

    The signal carries `access_until` once the change has committed: `until()` when the caller
    knows it, otherwise read then (one query, no lock held), so a settle without webhooks costs no
    more queries under its lock than before."""
    user = entitlement.user
    if webhooks.enabled():
        webhooks.access_delivery_record(event_type=event_type, user=user, data={
            **access_summary(user, now=now),
            "period": {**_period(entitlement), "revoked": entitlement.revoked_at is not None},
        })
    signal = SIGNALS[event_type]
    until = until or (lambda: access_until(user))
    transaction.on_commit(lambda: signal.send(sender=Entitlement, user=user, entitlement=entitlement,
                                              access_until=until()))
