"""Adoption and clean-up (the sweep's cases): recreate an order Stripe was paid for but our database
lost, link an order to its payment, cancel orders nobody started paying for
(docs/decisions/0007-adoption-trusts-stripe-metadata.md)."""

import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import normalize_email
from billing import locks, stripe_api
from billing.errors import BillingError, CustomerErased
from billing.models import Order, OrderState, Plan
from billing.money import format_money
from billing.services.erasure import ERASED_MARK
from billing.services.history import (
    event_order_recreated,
    event_payment_canceled,
    event_payment_linked,
    event_state_changed,
)
from billing.services.settle import order_settle
from config.failpoints import failpoint

S = OrderState

# How a Backstop reference looks; metadata without one is somebody else's charge.
REFERENCE_PATTERN = r"^BK-[0-9A-Z]{4}-[0-9A-Z]{4}$"
# Orders nobody started paying for within this long are canceled; no money is involved.
ABANDONED_AFTER = timedelta(days=1)


def is_backstop_metadata(metadata) -> bool:
    return bool(metadata) and bool(re.fullmatch(REFERENCE_PATTERN, str(metadata.get("reference") or "")))


def order_adopt(*, payment_intent_id: str, actor: str = "sweep") -> Order:
    """Recreate an order that Stripe was paid for but our database has lost, then settle it.

    A database restored from a backup, or a replica promoted after a crash, can lack orders
    whose money Stripe holds. The PaymentIntent's metadata (written by checkout before the
    customer could pay) says which order it was: reference, email and plan. If the payment
    matches a plan on sale, the customer ends up active with one entitlement and one
    confirmation, as if nothing had happened; otherwise the order waits for a person, and the
    customer is told we hold their money (docs/decisions/0007-adoption-trusts-stripe-metadata.md).
    """
    pi = stripe_api.payment_intent_retrieve(payment_intent_id)
    metadata = pi.metadata or {}
    if not is_backstop_metadata(metadata):
        raise BillingError(f"Stripe payment {payment_intent_id} carries no Backstop reference; not ours to adopt.")
    reference = metadata["reference"]
    if metadata.get(ERASED_MARK):
        # Its customer was erased (docs/decisions/0025-erasure.md): the order is not made
        # again from Stripe, which keeps the payment's amount, date and reference for the books.
        raise CustomerErased(f"Stripe payment {pi.id} ({reference}) belongs to a customer erased on "
                             f"{metadata[ERASED_MARK]}; not recreated.")
    existing = Order.objects.filter(reference=reference).first() or Order.objects.filter(
        stripe_payment_intent_id=pi.id).first()
    if existing is not None:
        return _order_link_payment(existing, pi, actor=actor)

    email = normalize_email(metadata.get("email") or pi.get("receipt_email") or "")
    if not email:
        raise BillingError(f"Stripe payment {pi.id} ({reference}) has no email to recreate the order for.")
    plan = Plan.objects.filter(code=metadata.get("plan") or "").first() or Plan.objects.filter(
        amount_cents=pi.amount, currency=pi.currency).order_by("-is_active").first()
    problems = []
    if plan is None:
        plan = Plan.objects.order_by("-is_active", "amount_cents").first()
        if plan is None:
            raise BillingError("No plan exists to recreate an order against.")
        problems.append(f"{format_money(pi.amount, pi.currency)} matches no plan's price")
    elif plan.amount_cents != pi.amount or plan.currency != pi.currency:
        problems.append(f"{format_money(pi.amount, pi.currency)} is not the {plan.name} plan's price "
                        f"({plan.price_display})")
    if not plan.is_active:
        problems.append(f"the {plan.name} plan is no longer on sale")
    customer = pi.customer if isinstance(pi.customer, str) or pi.customer is None else pi.customer.id
    try:
        with transaction.atomic():
            order = Order.objects.create(
                reference=reference, plan=plan, email=email, amount_cents=pi.amount, currency=pi.currency,
                stripe_customer_id=customer or "", stripe_payment_intent_id=pi.id,
            )
            event_order_recreated(order, actor=actor, payment_intent_id=pi.id)
            if problems:
                order.attention_reason = ("Recreated from Stripe, cannot activate: " + "; ".join(problems))[:500]
                event = event_state_changed(order, S.NEEDS_REVIEW, actor=actor, reason=order.attention_reason,
                                            stripe_ids={"payment_intent": pi.id})
                order.save()
                event.save()
    except IntegrityError:
        # Another sweep (another host) adopted it a moment ago; settle what it created.
        order = Order.objects.get(stripe_payment_intent_id=pi.id)
    failpoint("adoption.after_order_recreated")
    return order_settle(order_id=order.id, actor=actor, reason="adopted from Stripe", payment_intent=pi)


def _order_link_payment(order: Order, pi, *, actor: str) -> Order:
    """The order exists but never stored its PaymentIntent (restored from before it did)."""
    with transaction.atomic():
        locked = locks.order_lock(order.id)
        if not locked.stripe_payment_intent_id:
            locked.stripe_payment_intent_id = pi.id
            customer = pi.customer if isinstance(pi.customer, str) or pi.customer is None else pi.customer.id
            locked.stripe_customer_id = locked.stripe_customer_id or customer or ""
            locked.save(update_fields=["stripe_payment_intent_id", "stripe_customer_id", "updated_at"])
            event_payment_linked(locked, actor=actor, payment_intent_id=pi.id)
        elif locked.stripe_payment_intent_id != pi.id:
            raise BillingError(f"Order {order.reference} already has payment {locked.stripe_payment_intent_id}; "
                               f"Stripe payment {pi.id} claims the same reference.")
    return order_settle(order_id=order.id, actor=actor, reason="payment found by the sweep", payment_intent=pi)


def orders_cancel_abandoned(*, now=None, actor: str = "sweep", dry_run: bool = False) -> list[str]:
    """Cancel orders that never started a payment within a day (no money is involved)."""
    now = now or timezone.now()
    stale = Order.objects.filter(state=S.PENDING, stripe_payment_intent_id__isnull=True,
                                 created_at__lt=now - ABANDONED_AFTER)
    references = list(stale.values_list("reference", flat=True)[:500])
    if dry_run:
        return references
    for order_id in stale.filter(reference__in=references).values_list("id", flat=True):
        with transaction.atomic():
            order = locks.order_lock(order_id)
            if order.state == S.PENDING and not order.stripe_payment_intent_id:
                event_payment_canceled(order, actor=actor,
                                       reason="No payment was started within a day; nothing was charged").save()
                order.save()
    return references
