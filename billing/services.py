"""Billing writes. Views, webhooks, tasks, admin actions and commands call these; nothing else
changes billing state.

The rules every function here keeps:
- Stripe is never called inside a transaction that holds an order lock; we read Stripe first,
  then lock, re-read and decide (so a slow Stripe never blocks another path on the same order).
- Every Stripe mutation carries an idempotency key derived from the order, so repeating any step
  after a crash returns the first result instead of doing the thing twice.
- Every state change goes through `_move`, which refuses transitions the state machine does not
  list and appends an OrderEvent with the actor and the reason.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from accounts import access
from accounts.models import Entitlement, normalize_email
from billing import locks, selectors, signals, stripe_api
from billing.errors import BillingError, InvalidTransition, PaymentNotCanceled, PaymentSetupFailed, RefundFailed
from billing.models import Order, OrderEvent, OrderRefund, OrderState, OutboundEmail, Plan, StripeCustomer
from billing.money import format_money
from billing.queue import enqueue_after_commit
from billing.states import can_transition
from billing.stripe_events import STRIPE_EVENTS_USED
from config.failpoints import failpoint

logger = logging.getLogger(__name__)
S = OrderState

DEFAULT_PLAN = {
    "code": "annual",
    "name": "Annual",
    "amount_cents": 24900,
    "currency": "usd",
    "duration_months": 12,
}

# Past this age Stripe may have forgotten our idempotency key (it keeps them 24 hours), so
# before creating anything for an older order we search Stripe for what already exists.
IDEMPOTENCY_KEY_SAFE_AGE = timedelta(hours=23)


# --- Plans and setup -------------------------------------------------------------------------


@transaction.atomic
def plan_ensure_default() -> Plan:
    """Create the Annual plan once; re-running never changes a plan that is already on sale."""
    plan, _created = Plan.objects.get_or_create(
        code=DEFAULT_PLAN["code"],
        defaults={k: v for k, v in DEFAULT_PLAN.items() if k != "code"},
    )
    return plan


@transaction.atomic
def stripe_webhook_endpoint_ensure(*, secret: str, uuid: str, url: str, livemode: bool):
    """Store the signing secret of the Stripe webhook endpoint in dj-stripe's WebhookEndpoint,
    where billing/webhooks.py reads it to verify each delivery.

    The endpoint itself is configured in Stripe (dashboard, or the emulator's --webhook flag);
    this keeps our side in step so that `stripe/webhook/<uuid>/` accepts its signed events.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("The webhook signing secret starts with whsec_.")
    endpoint, _created = WebhookEndpoint.objects.update_or_create(
        djstripe_uuid=uuid,
        defaults={
            "id": f"we_backstop_{str(uuid).replace('-', '')[:20]}",
            "secret": secret,
            "url": url,
            "livemode": livemode,
            "status": "enabled",
            "enabled_events": ["*"],
            "stripe_data": {},
        },
    )
    return endpoint


# --- Checkout ----------------------------------------------------------------------------------


# Two checkouts from one browser this close together are the same purchase (two tabs, a reload,
# Back and submit again): the second gets the first order, so only one payment is ever in flight.
CHECKOUT_REUSE_WINDOW = timedelta(hours=1)


def order_create(*, plan: Plan, email: str, full_name: str = "", checkout_nonce=None, browser_key: str = "",
                 actor: str = "checkout", renewal: bool = False) -> Order:
    """Write the intent to buy before any money moves.

    `renewal`: checkout offered this payment as adding time to the running plan of an address the
    browser proved (issue 20); support and the customer see it labelled so, never as "paid twice".

    A repeated nonce (a double submit) returns the first order. Checkouts for one address are
    serialised, so two tabs of one browser submitted at the same moment cannot both make an order:
    the second finds the first's unpaid order (same browser, address and plan) and gets that.
    """
    email = normalize_email(email)
    if checkout_nonce is not None:
        existing = Order.objects.filter(checkout_nonce=checkout_nonce).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            locks.address_lock(email)
            if browser_key:
                unpaid = (Order.objects.filter(email=email, plan=plan, browser_key=browser_key,
                                               state__in=[S.PENDING, S.FAILED],
                                               created_at__gte=timezone.now() - CHECKOUT_REUSE_WINDOW)
                          .order_by("-created_at").first())
                if unpaid is not None:
                    return unpaid
            order = Order.objects.create(
                plan=plan,
                email=email,
                full_name=full_name.strip(),
                amount_cents=plan.amount_cents,
                currency=plan.currency,
                checkout_nonce=checkout_nonce,
                browser_key=browser_key,
                renewal=renewal,
            )
            created = "Renewal order created" if renewal else "Order created"
            _record(order, actor=actor, reason=f"{created} for {order.amount_display}", to_state=S.PENDING)
    except IntegrityError:
        # Two submits of the same form raced; the other one won and owns the order.
        if checkout_nonce is None:
            raise
        return Order.objects.get(checkout_nonce=checkout_nonce)
    failpoint("checkout.after_order_commit")
    return order


# Stripe statuses in which money is taken or on its way (a bank debit, an authorised card).
MONEY_IN_FLIGHT = ("processing", "requires_capture")
# Stripe statuses in which nothing was taken and the customer still has to act: the bank's check
# (3-D Secure), a card, a confirmation. The sweep cancels these after ABANDONED_PAYMENT_AFTER.
UNFINISHED_PAYMENT = ("requires_action", "requires_payment_method", "requires_confirmation")

# States in which an earlier order means the customer already has (or is getting) the plan: money
# taken or in flight. Pending and failed orders hold no money (settle keeps an unfinished bank
# check pending), so checking out again simply goes to payment.
PURCHASED = {S.PROCESSING, S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.DISPUTED}


def order_latest_purchase(*, email: str, plan: Plan, actor: str = "checkout") -> Order | None:
    """The newest order of this address for this plan that is bought or being bought (in
    PURCHASED); failing that, the newest one still open and unpaid; else None.

    Checkout asks before it offers a card form, so that a customer whose first payment went
    through (while the page told them otherwise, or they never saw the page) is not charged
    twice. Open orders with a PaymentIntent are settled first, so the answer is Stripe's. An
    unpaid attempt (a bank check left unfinished, a declined card) is never a purchase: it holds
    no money, and an unpaid order newer than a purchase does not hide that purchase.
    """
    now = timezone.now()
    candidates = (Order.objects.filter(email=normalize_email(email), plan=plan)
                  .exclude(state__in=[S.CANCELED, S.REFUNDED, S.REFUND_PENDING])
                  .order_by("-created_at")[:3])
    unpaid = None
    for order in candidates:
        if order.stripe_payment_intent_id and order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID):
            try:
                order = order_settle(order_id=order.id, actor=actor, reason="the customer is checking out again")
            except stripe_api.StripeError:
                logger.warning("Could not check %s with Stripe before a second checkout", order.reference)
                order.state = S.PROCESSING  # unknown: treat as possibly paid, never offer a second payment
                return order
        if order.state == S.ACTIVE:
            entitlement = Entitlement.objects.filter(order=order).first()
            if entitlement is None or entitlement.revoked_at is not None or entitlement.ends_at <= now:
                continue  # time that has run out: buying again is simply buying
        if order.state not in PURCHASED:
            unpaid = unpaid or order  # not paid, nothing in flight: look on for a real purchase
            continue
        return order
    return unpaid


def stripe_customer_ensure(*, email: str) -> str:
    """The address's one Stripe Customer id (decision 0015), created the first time it pays.

    Kept in StripeCustomer; an address that paid before the mapping existed keeps the customer of
    its earliest order. Created with an idempotency key made of the address alone (and parameters
    that depend on nothing else, as Stripe requires of a repeated key), so two checkouts of one
    address at once, or a retry after a crash, make one customer. Called outside any transaction.
    """
    email = normalize_email(email)
    known = StripeCustomer.objects.filter(email=email).values_list("stripe_customer_id", flat=True).first()
    if known:
        return known
    customer_id = (Order.objects.filter(email=email).exclude(stripe_customer_id="").order_by("created_at")
                   .values_list("stripe_customer_id", flat=True).first())
    if not customer_id:
        digest = hashlib.sha256(email.encode()).hexdigest()[:40]
        customer_id = stripe_api.customer_create(idempotency_key=f"backstop-customer-{digest}", email=email,
                                                 metadata={"backstop_email": email}).id
    try:
        with transaction.atomic():
            StripeCustomer.objects.get_or_create(email=email, defaults={"stripe_customer_id": customer_id})
    except IntegrityError:
        pass  # another checkout stored it a moment ago: the one read below
    return StripeCustomer.objects.get(email=email).stripe_customer_id


def order_prepare_payment(*, order: Order, actor: str = "checkout"):
    """Make sure the order has its Stripe Customer and PaymentIntent; return the PaymentIntent.

    Safe to call any number of times, from any process: the idempotency keys make Stripe return
    the same objects, and the ids are stored only if no other call stored them first.
    """
    if order.stripe_payment_intent_id:
        try:
            return stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
        except stripe_api.StripeError as exc:
            logger.warning("Payment lookup failed for %s: %s", order.reference, exc)
            raise PaymentSetupFailed(str(exc)) from exc

    existing = None
    if timezone.now() - order.created_at > IDEMPOTENCY_KEY_SAFE_AGE:
        existing = next(iter(stripe_api.payment_intent_search_by_order(order.id)), None)
    try:
        if existing is not None:
            payment_intent = existing
            customer_id = existing.customer if isinstance(existing.customer, str) else existing.customer.id
        else:
            # What the sweep needs to recreate the order if our row is ever lost (a restore).
            metadata = {"order_id": str(order.id), "reference": order.reference, "email": order.email,
                        "plan": order.plan.code}
            customer_id = stripe_customer_ensure(email=order.email)
            failpoint("checkout.after_customer")
            payment_intent = stripe_api.payment_intent_create(
                idempotency_key=f"backstop-order-{order.public_id}-payment-intent",
                amount=order.amount_cents,
                currency=order.currency,
                customer=customer_id,
                automatic_payment_methods={"enabled": True},
                receipt_email=order.email,
                description=f"{order.plan.name} plan{' renewal' if order.renewal else ''}, order {order.reference}",
                # The bank line reads e.g. "BACKSTOP* 7F3K9QX2": recognisable, and support can
                # find the order from it.
                statement_descriptor_suffix=order.reference.replace("BK-", "").replace("-", ""),
                metadata=metadata,
            )
    except stripe_api.StripeError as exc:
        logger.warning("Payment setup failed for %s: %s", order.reference, exc)
        raise PaymentSetupFailed(str(exc)) from exc
    failpoint("checkout.after_payment_intent_created")

    with transaction.atomic():
        locked = locks.order_lock(order.id)
        if not locked.stripe_payment_intent_id:
            locked.stripe_customer_id = customer_id
            locked.stripe_payment_intent_id = payment_intent.id
            locked.save(update_fields=["stripe_customer_id", "stripe_payment_intent_id", "updated_at"])
            _record(locked, actor=actor, reason="Payment set up with Stripe",
                    stripe_ids={"customer": customer_id, "payment_intent": payment_intent.id})
    order.refresh_from_db()
    return payment_intent


# --- Settle: the one way an order moves on -----------------------------------------------------


def order_settle(*, order_id: int, actor: str, reason: str = "", payment_intent=None) -> Order:
    """Bring the order in line with what Stripe says, and return it.

    Any path may call this any number of times, concurrently: the webhook, the customer's
    status page, the sweep, support. It reads Stripe's PaymentIntent (unless the caller passes a
    fresh one), then locks the order, re-reads it and applies only the moves the truth requires.
    Paid orders become active with exactly one entitlement and one confirmation email; a
    mismatch between what Stripe took and what the order asked for goes to needs_review.
    """
    order = Order.objects.only("id", "state", "stripe_payment_intent_id").get(pk=order_id)
    if not order.stripe_payment_intent_id:
        return Order.objects.get(pk=order_id)  # nothing in Stripe to settle against yet
    if payment_intent is None:
        payment_intent = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    failpoint("settle.after_stripe_read")

    with transaction.atomic():
        order = locks.order_lock(order_id)
        failpoint("settle.after_lock")
        if actor == "webhook":
            failpoint("webhook.inside_settle")  # only the webhook's settle, not the customer's or the sweep's
        _converge(order, payment_intent, actor=actor, reason=reason)
        failpoint("settle.before_commit")
    return order


def _belongs_to(order: Order, pi) -> bool:
    """Does this PaymentIntent say it pays for this order?

    The reference is the identity that survives a database restored from a backup (row ids are
    reused after a restore; references are random and unique), so it wins over the row id.
    """
    metadata = pi.metadata or {}
    if metadata.get("reference"):
        return metadata["reference"] == order.reference
    return metadata.get("order_id") == str(order.id)


def _converge(order: Order, pi, *, actor: str, reason: str):
    charge = pi.get("latest_charge") if pi.get("latest_charge") else None
    if isinstance(charge, str):
        # The caller passed an unexpanded PaymentIntent; the charge facts are one call away, but
        # we are inside the lock now, so act on the status alone and let the next settle fill in.
        charge = None
    ids = {"payment_intent": pi.id, **({"charge": charge.id} if charge else {})}
    why = f" ({reason})" if reason else ""
    events = []
    fully_refunded = False

    def move(to_state, because):
        events.append(_move(order, to_state, actor=actor, reason=because + why, stripe_ids=ids))

    if not _belongs_to(order, pi):
        if order.state != S.NEEDS_REVIEW:
            order.attention_reason = "Stripe payment does not carry this order's reference"
            move(S.NEEDS_REVIEW, order.attention_reason)
    elif pi.status == "succeeded":
        facts_changed = _record_payment_facts(order, pi, charge)
        refunded = charge.amount_refunded if charge else order.amount_refunded_cents
        if refunded != order.amount_refunded_cents:
            order.amount_refunded_cents = refunded
            events.append(OrderEvent(order=order, actor=actor, stripe_ids=ids, reason=(
                f"Stripe shows {format_money(refunded, pi.currency)} refunded in total{why}")[:500]))
        if charge is not None:
            _record_refunds(order, charge)
        fully_refunded = charge is not None and (
            bool(charge.get("refunded")) or charge.amount_refunded >= pi.amount_received)
        if fully_refunded:
            if order.state != S.REFUNDED:
                if order.state in (S.PENDING, S.PROCESSING, S.FAILED):
                    move(S.PAID, "Stripe confirmed the payment")
                move(S.REFUNDED, "Stripe shows the payment fully refunded")
                _revoke_entitlement(order, "refunded")
                if not order.refund_reason:
                    order.refund_reason = "Our team issued this refund."
                if not order.emails.filter(kind=OutboundEmail.Kind.REFUND).exists():
                    _owe_once(order, OutboundEmail.Kind.REFUND, pi)
        elif pi.amount_received != order.amount_cents or pi.currency != order.currency:
            if order.state != S.NEEDS_REVIEW:
                order.attention_reason = (
                    f"Stripe received {format_money(pi.amount_received, pi.currency)}, "
                    f"the order expects {order.amount_display}"
                )
                move(S.NEEDS_REVIEW, order.attention_reason)
        elif order.state in (S.PENDING, S.PROCESSING, S.FAILED):
            move(S.PAID, "Stripe confirmed the payment")
            _activate(order, pi, actor=actor, events=events, why=why, ids=ids)
        elif order.state == S.PAID:
            _activate(order, pi, actor=actor, events=events, why=why, ids=ids)
        elif order.state == S.CANCELED:
            order.attention_reason = "A payment arrived for an order that had been canceled"
            move(S.NEEDS_REVIEW, order.attention_reason)
        # A dispute freezes nothing for the customer yet; it puts the order in front of a person.
        if charge is not None and charge.get("disputed") and order.state in (S.PAID, S.ACTIVE):
            move(S.DISPUTED, "The customer's bank opened a dispute on the payment")
            signals.attention(kind="dispute", key=f"dispute:{order.id}", order=order,
                        summary=f"{order.reference}: the customer's bank disputed {order.paid_display}")
        if facts_changed and not events:
            order.save(update_fields=[*PAYMENT_FACTS, "updated_at"])
    elif pi.status in MONEY_IN_FLIGHT:
        if order.state in (S.PENDING, S.FAILED):
            move(S.PROCESSING, f"Stripe reports the payment as {pi.status.replace('_', ' ')}")
    elif pi.status in UNFINISHED_PAYMENT:
        # Nothing was taken: the customer still has to act (the bank's check, a card), so the order
        # is unpaid, never "processing" (docs/reconcile.md#abandoned-payment-attempts).
        error = pi.get("last_payment_error")
        if error and pi.status != "requires_action" and order.state in (S.PENDING, S.PROCESSING):
            order.attention_reason = (error.get("message") or "The card was declined")[:500]
            move(S.FAILED, f"Payment attempt failed: {order.attention_reason}")
        elif pi.status == "requires_action" and order.state in (S.PROCESSING, S.FAILED):
            move(S.PENDING, "The bank asked the customer to confirm the payment; nothing was taken")
        elif not error and order.state in (S.PROCESSING, S.FAILED):
            move(S.PENDING, "Waiting for the customer to pay")
    elif pi.status == "canceled" and order.state in (S.PENDING, S.PROCESSING, S.FAILED):
        move(S.CANCELED, f"Stripe canceled the payment ({pi.get('cancellation_reason') or 'no reason'})")

    if order.state in (S.PAID, S.ACTIVE) and pi.status != "succeeded":
        order.attention_reason = f"Order is {order.state} but Stripe says {pi.status}"
        move(S.NEEDS_REVIEW, order.attention_reason)

    # Money held without service: tell the customer now, before they have to ask, and start the
    # clock after which they are refunded without asking.
    held = order.state == S.NEEDS_REVIEW and pi.status == "succeeded" and not fully_refunded
    if held and order.held_since is None:
        events.append(_hold_money(order, actor=actor, ids=ids, pi=pi))

    status_seen = _record_payment_status(order, pi)
    if events:
        order.save()
        OrderEvent.objects.bulk_create(events)
    elif status_seen:
        order.save(update_fields=["payment_status", "payment_status_at", "updated_at"])


def _record_payment_status(order: Order, pi) -> bool:
    """Keep Stripe's status on the order, and since when we know it (for the sweep's clock).

    The first time we see a PaymentIntent, it has been in its status at most since Stripe created
    it; after that, since the settle that saw it change.
    """
    if pi.status == order.payment_status:
        return False
    if order.payment_status or not pi.get("created"):
        order.payment_status_at = timezone.now()
    else:
        order.payment_status_at = datetime.fromtimestamp(pi.created, tz=UTC)
    order.payment_status = pi.status
    return True


# What settle copies from Stripe's PaymentIntent and charge onto the order.
PAYMENT_FACTS = ["paid_at", "amount_received_cents", "received_currency", "stripe_charge_id", "card_brand",
                 "card_last4", "statement_descriptor"]


def _record_payment_facts(order: Order, pi, charge) -> bool:
    """Copy what Stripe knows about the payment onto the order; True if anything changed.

    The amount is the PaymentIntent's amount_received, in Stripe's currency: what the customer's
    bank sees, and so what every page and email says, whatever the order asked for.
    """
    before = [getattr(order, field) for field in PAYMENT_FACTS]
    if order.paid_at is None:
        created = charge.created if charge else pi.created
        order.paid_at = datetime.fromtimestamp(created, tz=UTC)
    order.amount_received_cents = pi.amount_received
    order.received_currency = pi.currency
    if charge is not None:
        order.stripe_charge_id = charge.id
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        order.card_brand = card.get("brand") or order.card_brand
        order.card_last4 = card.get("last4") or order.card_last4
        order.statement_descriptor = (charge.get("calculated_statement_descriptor")
                                      or order.statement_descriptor)[:30]
    return before != [getattr(order, field) for field in PAYMENT_FACTS]


def _record_refunds(order: Order, charge):
    """Keep one OrderRefund per refund Stripe lists on the charge (when the charge came with them)."""
    refunds = charge.get("refunds")
    if not refunds or isinstance(refunds, str):
        return
    rows = [OrderRefund(order=order, stripe_refund_id=r.id, amount_cents=r.amount, currency=r.currency,
                        status=r.status, created_at=datetime.fromtimestamp(r.created, tz=UTC))
            for r in refunds.get("data") or []]
    if rows:
        OrderRefund.objects.bulk_create(rows, update_conflicts=True, unique_fields=["stripe_refund_id"],
                                        update_fields=["amount_cents", "status"])


def _activate(order: Order, pi, *, actor: str, events: list, why: str, ids: dict):
    """Grant access for the paid order: one entitlement (unique per order) and one email.

    One payment buys one plan's length of time, whatever the customer already has: if their plan
    still runs, the new time starts where it ends (stacked, no day lost).
    """
    user = _user_for_email(order.email, order.full_name)  # also locks the user: stacking cannot race
    entitlement = access.access_grant(user=user, order=order, plan=order.plan, paid_at=order.paid_at)
    starts_at = entitlement.starts_at
    failpoint("settle.after_entitlement")
    order.user = user
    granted = (f"Access granted until {entitlement.ends_at:%Y-%m-%d}" if starts_at == order.paid_at else
               f"Access granted from {starts_at:%Y-%m-%d} (after the plan already paid for) "
               f"until {entitlement.ends_at:%Y-%m-%d}")
    events.append(_move(order, S.ACTIVE, actor=actor, reason=granted + why, stripe_ids=ids))
    _owe_once(order, OutboundEmail.Kind.CONFIRMATION, pi)
    failpoint("settle.after_outbox_row")


def _hold_money(order: Order, *, actor: str, ids: dict, pi=None) -> OrderEvent:
    """Start holding the customer's money openly: the deadline, the email, the team's alert.

    Called inside the order's lock, once per order (held_since is then set); the caller saves.
    """
    now = timezone.now()
    order.held_since = now
    order.refund_deadline_at = now + settings.HELD_MONEY_DEADLINE
    deadline = f"{timezone.localtime(order.refund_deadline_at):%Y-%m-%d %H:%M %Z}"
    failpoint("held_money.after_hold")
    if not order.emails.filter(kind=OutboundEmail.Kind.PAYMENT_RECEIVED).exists():
        _owe_once(order, OutboundEmail.Kind.PAYMENT_RECEIVED, pi)
    signals.attention(kind="held_money", key=f"held-money:{order.id}", order=order,
                summary=f"{order.reference}: {order.paid_display} held without service; "
                        f"refunded automatically at {deadline} unless finished first",
                details=order.attention_reason)
    return OrderEvent(order=order, actor=actor, stripe_ids=ids, reason=(
        f"Money held without service: customer told, automatic refund at {deadline} "
        f"unless the order is finished first")[:500])


def _revoke_entitlement(order: Order, why: str):
    """Take back the time this order bought (accounts.access); time stacked after it moves up."""
    _entitlement, moved = access.access_revoke(order=order, why=why)
    _record_time_moved(moved, why="up after an earlier payment was refunded")


def _record_time_moved(moved, *, why: str):
    """On each order's timeline, where its time now falls after the periods were laid out again."""
    for entitlement in moved:
        _record(entitlement.order, actor="system", reason=(
            f"Time moved {why}: now {entitlement.starts_at:%Y-%m-%d} to {entitlement.ends_at:%Y-%m-%d}"))


def entitlement_add_days(*, order_id: int, days: int, actor: str, reason: str) -> Entitlement:
    """More time on what this order bought (support's Extend, an outage): accounts.access adds the
    days, moves the periods after it along, and billing writes the order's timeline. The returned
    entitlement carries `access_until`, the end of all the customer's time.

    Runs in the caller's transaction (which holds the order's lock)."""
    entitlement = access.access_extend(order_id=order_id, days=days)
    _record_time_moved(entitlement.moved, why="along after an earlier period was extended")
    until, until_before = entitlement.access_until, entitlement.access_until_before
    was = f"was {until_before:%Y-%m-%d}" if until_before else "it had run out"
    _record(entitlement.order, actor=actor, reason=(
        f"Access extended by {days} days: paid time now ends {until:%Y-%m-%d} ({was}): {reason.strip()}"))
    return entitlement


def _user_for_email(email: str, full_name: str):
    """The customer's account, created on first purchase; one statement either way.

    An upsert (INSERT … ON CONFLICT (email) DO UPDATE … RETURNING) rather than select-then-insert:
    two orders for the same address may activate concurrently, and this cannot race.
    """
    User = get_user_model()
    (user,) = User.objects.bulk_create(
        [User(email=email, full_name=full_name, password="!")],
        update_conflicts=True, unique_fields=["email"], update_fields=["email"],
    )
    return user


# --- Stripe events (the webhook's fast path) ----------------------------------------------------
# The webhook view (billing/webhooks.py) checks each delivery and hands the event here. An event is
# a nudge: the order it concerns is settled from Stripe's own word, as the customer's return does,
# whichever comes first; the other then finds the order settled and costs one read. Mirroring
# Stripe's objects is the pull sync's job (billing/mirror.py, every minute, through dj-stripe).
# docs/decisions/0009-webhooks-settle-the-mirror-pulls.md weighs this.


def stripe_event_receive(*, event: dict) -> str:
    """Act on one verified Stripe event; returns what was done, for the log.

    Raises StripeError when Stripe cannot be asked now: the view answers 503 and Stripe delivers
    the event again later (and the sweep settles the order meanwhile if it can).
    """
    if event.get("type") not in STRIPE_EVENTS_USED:
        return "not an event Backstop uses"
    order = selectors.order_for_stripe_object(event["data"]["object"])
    if order is None:
        # Not ours (another product on the account), or our order row is missing (a restore from
        # a backup): the pull sync mirrors the charge and the sweep adopts it.
        return "no order; left to the sweep"
    if selectors.stripe_event_is_old_news(event, order):
        return f"{order.reference} already settled"
    order = order_settle(order_id=order.id, actor="webhook", reason=f"Stripe event {event['type']} {event['id']}")
    return f"{order.reference} settled: {order.state}"


# --- Refunds and held money ---------------------------------------------------------------------

# Where a customer has paid and may be refunded by us. A disputed payment is not: Stripe refuses
# to refund it, and the bank's process decides.
REFUNDABLE = {S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.REFUND_PENDING}


def order_refund(*, order_id: int, actor: str, reason: str, amount_cents: int | None = None,
                 claim: Callable[[], None] | None = None) -> Order:
    """Give the customer's money back: all that is left of it, or `amount_cents` of it.

    The one way Backstop refunds (support, the customer's own "refund me now", the held-money
    deadline, the sweep). Safe to repeat and to race: the Stripe idempotency key is made of the
    order, the amount already refunded and the amount, so a double submit or two people at once
    make one refund, while a deliberate second partial refund gets a key of its own. A full
    refund ends access at once and the order waits in refund_pending until Stripe shows the
    money returned; settle then records it and owes the customer one refund email saying why.
    """
    order = Order.objects.get(pk=order_id)
    if not order.stripe_payment_intent_id:
        raise BillingError(f"Order {order.reference} has no payment to refund.")
    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    charge = pi.get("latest_charge")
    if pi.status != "succeeded" or not charge or isinstance(charge, str):
        raise BillingError(f"Stripe shows no completed payment to refund for {order.reference}.")
    remaining = pi.amount_received - charge.amount_refunded
    if remaining <= 0:
        return order_settle(order_id=order_id, actor=actor, reason="already refunded", payment_intent=pi)
    amount = remaining if amount_cents is None else amount_cents
    if not 0 < amount <= remaining:
        raise BillingError(f"A refund for {order.reference} must be between "
                           f"{format_money(1, pi.currency)} and {format_money(remaining, pi.currency)}.")
    full = amount == remaining
    money = format_money(amount, pi.currency)
    ids = {"payment_intent": pi.id, "charge": charge.id}

    with transaction.atomic():
        order = locks.order_lock(order_id)
        if order.state not in REFUNDABLE:
            raise BillingError(f"Order {order.reference} is {order.get_state_display().lower()}; "
                               "it cannot be refunded from here.")
        if claim is not None:
            claim()
        if full and order.state != S.REFUND_PENDING:
            order.refund_reason = reason[:500]
            event = _move(order, S.REFUND_PENDING, actor=actor, reason=f"Refund of {money} requested: {reason}",
                          stripe_ids=ids)
            order.save()
            event.save()
            _revoke_entitlement(order, "refund requested")
        elif not full:
            _record(order, actor=actor, reason=f"Partial refund of {money} requested: {reason}", stripe_ids=ids)

    try:
        refund = stripe_api.refund_create(
            idempotency_key=f"backstop-order-{order.public_id}-refund-{charge.amount_refunded}-{amount}",
            payment_intent=pi.id,
            amount=amount,
            reason="requested_by_customer",
            metadata={"order_id": str(order.id), "reference": order.reference, "actor": actor[:100]},
        )
    except stripe_api.StripeError as exc:
        logger.warning("Refund of %s for %s failed: %s", money, order.reference, exc)
        _record(order, actor=actor, reason=f"Stripe did not confirm the refund of {money}: {exc}", stripe_ids=ids)
        signals.attention(kind="refund_failed", key=f"refund-failed:{order.id}:{charge.amount_refunded}",
                    order=order, summary=f"{order.reference}: refund of {money} not confirmed by Stripe",
                    details=str(exc))
        raise RefundFailed(f"Stripe did not confirm the refund for {order.reference}; "
                           "it will be retried. Nothing was refunded twice.") from exc
    failpoint("refund.after_stripe_accepted")
    _record(order, actor=actor, reason=f"Stripe accepted the refund of {money} ({refund.status})",
            stripe_ids={**ids, "refund": refund.id})
    return order_settle(order_id=order_id, actor=actor, reason="refund issued")


def order_hold_money(*, order_id: int, actor: str, reason: str) -> Order:
    """Stripe has the customer's money and we could not finish the order just now: say so.

    For when settle itself fails (Stripe or our database unreachable) while the mirror shows a
    succeeded charge. The order keeps its state, so the next settle still finishes it on its
    own; meanwhile the customer is told, with the date of their automatic refund, and the team
    is alerted. Once per order.
    """
    with transaction.atomic():
        order = locks.order_lock(order_id)
        if order.held_since is not None or order.state in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED):
            return order
        if not order.attention_reason:
            order.attention_reason = reason[:500]
        event = _hold_money(order, actor=actor, ids={"payment_intent": order.stripe_payment_intent_id or ""})
        order.save()
        event.save()
    return order


def order_accept_amount(*, order_id: int, actor: str, reason: str,
                        claim: Callable[[], None] | None = None) -> Order:
    """Accept what Stripe took when it differs from what the order asked ($248 for a $249 order):
    the order's price becomes Stripe's amount and the plan is granted for it, with one confirmation
    email; the money held without service is no longer held. A person decides this (support, with
    the refund right), with a reason on the timeline; the other way out is a refund.

    Reads Stripe first, then locks and re-checks; safe to repeat (an order already accepted is
    returned as it is). `claim` runs under the lock, as order_refund's does.
    """
    if not reason.strip():
        raise BillingError("Say why the amount Stripe took is accepted, for the order's history.")
    order = Order.objects.get(pk=order_id)
    if not order.stripe_payment_intent_id:
        raise BillingError(f"Order {order.reference} has no payment to accept.")
    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    charge = pi.get("latest_charge")
    if pi.status != "succeeded" or not charge or isinstance(charge, str) or not _belongs_to(order, pi):
        raise BillingError(f"Stripe shows no completed payment of {order.reference} to accept.")
    if charge.amount_refunded or charge.get("disputed"):
        raise BillingError(f"The payment of {order.reference} was refunded or disputed since; nothing to accept.")
    taken = format_money(pi.amount_received, pi.currency)
    ids = {"payment_intent": pi.id, "charge": charge.id}

    with transaction.atomic():
        order = locks.order_lock(order_id)
        if claim is not None:
            claim()
        if order.state == S.ACTIVE and order.events.filter(from_state=S.NEEDS_REVIEW, to_state=S.PAID).exists():
            return order  # accepted a moment ago (a retry): only Accept moves an order from review to paid
        if order.state != S.NEEDS_REVIEW or (order.amount_cents, order.currency) == (pi.amount_received,
                                                                                    pi.currency):
            raise BillingError(f"Order {order.reference} is {order.get_state_display().lower()} and Stripe took "
                               "what it asked: Accept is for an amount Stripe took differently.")
        asked = order.amount_display
        _record_payment_facts(order, pi, charge)
        order.amount_cents, order.currency = pi.amount_received, pi.currency
        order.attention_reason = ""
        events = [_move(order, S.PAID, actor=actor, stripe_ids=ids,
                        reason=f"Accepted {taken} as Stripe took it for the {asked} order: {reason.strip()}")]
        _activate(order, pi, actor=actor, events=events, why=f" (for the {taken} Stripe took)", ids=ids)
        order.save()
        OrderEvent.objects.bulk_create(events)
    return order


# --- Adoption and clean-up (the sweep's cases) ---------------------------------------------------

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
    money = format_money(pi.amount, pi.currency)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                reference=reference, plan=plan, email=email, amount_cents=pi.amount, currency=pi.currency,
                stripe_customer_id=customer or "", stripe_payment_intent_id=pi.id,
            )
            _record(order, actor=actor, to_state=S.PENDING, stripe_ids={"payment_intent": pi.id}, reason=(
                f"Order recreated from Stripe's records: Stripe holds {money} for {reference} "
                "but our database had no such order"))
            if problems:
                order.attention_reason = ("Recreated from Stripe, cannot activate: " + "; ".join(problems))[:500]
                event = _move(order, S.NEEDS_REVIEW, actor=actor, reason=order.attention_reason,
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
            _record(locked, actor=actor, reason="Linked to its Stripe payment, found by the sweep",
                    stripe_ids={"payment_intent": pi.id})
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
                _move(order, S.CANCELED, actor=actor,
                      reason="No payment was started within a day; nothing was charged").save()
                order.save()
    return references


# Orders whose payment attempt may be canceled: nothing taken (or, for processing, Stripe decides).
PAYMENT_CANCELABLE = (S.PENDING, S.FAILED, S.PROCESSING)


def order_payment_cancel(*, order_id: int, actor: str, reason: str) -> Order:
    """Cancel the order's unfinished payment attempt in Stripe, then the order; return it.

    For a bank check left unfinished, a card form never sent, a declined card never retried:
    nothing was taken, and canceling the PaymentIntent makes sure nothing can be taken later.
    Stripe is read first and has the last word: a payment that succeeded or is on its way is
    settled instead and PaymentNotCanceled is raised, saying so. Safe to repeat and to race with
    the customer paying at that moment: the cancel carries one idempotency key per order, and
    whatever Stripe then says is what settle records (the order becomes canceled, with an
    OrderEvent naming `actor` and `reason`, only if Stripe canceled the payment).
    """
    order = Order.objects.get(pk=order_id)
    if order.state == S.CANCELED:
        return order
    if order.state not in PAYMENT_CANCELABLE:
        raise PaymentNotCanceled(f"{order.reference} is {order.get_state_display().lower()}: there is no unfinished "
                                 "payment to cancel.", order)
    if not order.stripe_payment_intent_id:
        with transaction.atomic():
            order = locks.order_lock(order_id)
            # Re-read under the lock: checkout may have set up a payment a moment ago.
            if order.state in (S.PENDING, S.FAILED) and not order.stripe_payment_intent_id:
                _move(order, S.CANCELED, actor=actor,
                      reason=f"Canceled before any payment was started ({reason})").save()
                order.save()
                return order
        return order_payment_cancel(order_id=order_id, actor=actor, reason=reason)

    pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    if pi.status in UNFINISHED_PAYMENT:
        try:
            pi = stripe_api.payment_intent_cancel(
                order.stripe_payment_intent_id, idempotency_key=f"backstop-order-{order.public_id}-cancel")
        except stripe_api.InvalidRequestError as exc:
            # It moved on between our read and the cancel (the customer finished paying): read again.
            logger.info("Cancel of %s refused by Stripe (%s); settling instead", order.reference, exc)
            pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    order = order_settle(order_id=order_id, actor=actor, reason=reason, payment_intent=pi)
    if order.state == S.CANCELED:
        return order
    if pi.status == "succeeded":
        taken = format_money(pi.amount_received, pi.currency)
        raise PaymentNotCanceled(f"Stripe shows {taken} taken for {order.reference}, so nothing was canceled; the "
                                 f"order is now {order.get_state_display().lower()}.", order)
    if pi.status in MONEY_IN_FLIGHT:
        raise PaymentNotCanceled(f"Stripe shows the payment for {order.reference} as {pi.status.replace('_', ' ')} "
                                 "(money on its way), so nothing was canceled.", order)
    raise PaymentNotCanceled(f"Stripe shows the payment for {order.reference} as {pi.status.replace('_', ' ')}; "
                             f"nothing was canceled (the order is {order.get_state_display().lower()}).", order)


def orders_with_abandoned_payment(*, now=None) -> list[int]:
    """Orders whose payment attempt has been unfinished for ABANDONED_PAYMENT_AFTER, as we last
    knew it (the sweep reads Stripe again before it cancels anything)."""
    return selectors.orders_with_unfinished_payment(unchanged_since=(now or timezone.now())
                                                    - settings.ABANDONED_PAYMENT_AFTER)


def order_payment_abandoned_cancel(*, order_id: int, now=None, actor: str = "sweep") -> Order:
    """The sweep's case: read Stripe (settling whatever it shows), and cancel the attempt only if it
    is still unfinished and has been for ABANDONED_PAYMENT_AFTER; return the order."""
    cutoff = (now or timezone.now()) - settings.ABANDONED_PAYMENT_AFTER
    order = order_settle(order_id=order_id, actor=actor, reason="payment attempt unfinished for a while")
    abandoned = (order.state in (S.PENDING, S.FAILED) and order.payment_status in UNFINISHED_PAYMENT
                 and order.payment_status_at is not None and order.payment_status_at < cutoff)
    if not abandoned:
        return order
    return order_payment_cancel(order_id=order_id, actor=actor, reason=(
        f"payment left unfinished for more than {abandoned_payment_after_words()}; nothing was charged"))


def abandoned_payment_after_words() -> str:
    """ABANDONED_PAYMENT_AFTER as people say it ("an hour", "90 minutes")."""
    duration = settings.ABANDONED_PAYMENT_AFTER
    minutes = int(duration.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return "an hour" if hours == 1 else f"{hours} hours"
    if minutes >= 1:
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    return f"{int(duration.total_seconds())} seconds"


# --- State machine and history -----------------------------------------------------------------


def _move(order: Order, to_state: str, *, actor: str, reason: str, stripe_ids=None) -> OrderEvent:
    """Change the order's state in memory and return the event; the caller saves both."""
    if not can_transition(order.state, to_state):
        raise InvalidTransition(order, to_state)
    event = OrderEvent(order=order, actor=actor, from_state=order.state, to_state=to_state,
                       reason=reason[:500], stripe_ids=stripe_ids or {})
    order.state = to_state
    order.state_changed_at = timezone.now()
    if order.held_since is not None and to_state in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.CANCELED):
        order.held_since = order.refund_deadline_at = None
        signals.attention_over.send(sender=Order, order=order, kinds=["held_money"])
    return event


def _record(order: Order, *, actor: str, reason: str, to_state: str = "", stripe_ids=None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, actor=actor, to_state=to_state, reason=reason[:500],
                                     stripe_ids=stripe_ids or {})


# --- Outbox ---------------------------------------------------------------------------------------


def outbound_email_queue(*, kind: str, order: Order | None = None, user=None, recipient: str = "",
                         dedupe_key: str | None = None, subject: str = "", body: str = "",
                         in_reply_to: str = "", sent_by: str = "", send_reason: str = "",
                         facts: dict | None = None) -> OutboundEmail | None:
    """Owe the customer an email, in the caller's transaction; it is sent after commit.

    About an order (`order`), or for the password link about an account (`user`); a support
    reply carries its own `subject` and `body`, threaded under `in_reply_to`. With a
    `dedupe_key` (e.g. "renewal:<entitlement>:30d") the email is owed at most once for ever: if a
    row with that key exists, or another process inserts it at the same moment, nothing is added
    and None is returned. `sent_by` ("Ana from our support team") marks an email a person chose to
    send, with `send_reason` in the customer's words; the email then says who and why. `facts`
    are what the email states as decided now (e.g. an extension's days and new end).
    """
    fields = {"order": order, "user": user, "kind": kind, "next_attempt_at": timezone.now(),
              "recipient": recipient or (order.email if order is not None else user.email),
              "subject": subject[:300], "body": body, "in_reply_to": in_reply_to[:998],
              "sent_by": sent_by[:200], "send_reason": send_reason[:500], "facts": facts or {}}
    if dedupe_key is None:
        email = OutboundEmail.objects.create(**fields)
    else:
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives a duplicate
                email = OutboundEmail.objects.create(**fields, dedupe_key=dedupe_key)
        except IntegrityError:
            if OutboundEmail.objects.filter(dedupe_key=dedupe_key).exists():
                return None
            raise
    enqueue_after_commit("billing.tasks.send_outbound_email", email.id, task_name=f"email-{email.id}")
    return email


def _sent_note_key(kind: str) -> str:
    return f"backstop_sent_{kind}"  # Stripe metadata keys: at most 40 characters


def _owe_once(order: Order, kind: str, pi=None) -> OutboundEmail | None:
    """Owe one of the once-per-order emails (the caller knows it is not owed yet), unless Stripe's
    record says it already went.

    Our outbox rows are lost with a database restored from a backup; the note the sender left on
    the PaymentIntent is not, so the customer is not sent the same email twice
    (docs/decisions/0012-what-was-sent-survives-a-restore.md).
    """
    note = str(((pi.metadata or {}) if pi is not None else {}).get(_sent_note_key(kind)) or "")
    if not note:
        return outbound_email_queue(order=order, kind=kind)
    stamp, _, message_id = note.partition(" ")
    try:
        sent_at = datetime.fromisoformat(stamp)
    except ValueError:
        sent_at = timezone.now()
    email = OutboundEmail.objects.create(order=order, kind=kind, recipient=order.email,
                                         status=OutboundEmail.Status.SENT, sent_at=sent_at,
                                         esp_message_id=message_id[:255], stripe_noted_at=timezone.now())
    _record(order, actor="system", reason=(f"{email.get_kind_display()} already sent on {stamp} by Stripe's record "
                                           "of it; not sent again (our database was restored from before)"))
    return email


def _note_sent_in_stripe(email: OutboundEmail) -> bool:
    """Write on the order's PaymentIntent that this email went, with when and the ESP's id.

    Keyed per order and kind, so a retry repeats the same write; a resend of a noted email
    changes nothing (it is still the email that went).
    """
    pi_id = email.order.stripe_payment_intent_id if email.order_id else None
    if pi_id:
        stamp = (email.sent_at or timezone.now()).astimezone(UTC).isoformat(timespec="seconds")
        try:
            stripe_api.payment_intent_note(
                pi_id, idempotency_key=f"sent-{email.order.reference}-{email.kind}",
                metadata={_sent_note_key(email.kind): f"{stamp} {email.esp_message_id}"[:500]})
        except stripe_api.StripeError as exc:
            logger.warning("Could not note in Stripe that email %s went (the dispatcher retries): %s", email.id, exc)
            return False
    OutboundEmail.objects.filter(pk=email.pk).update(stripe_noted_at=timezone.now())
    return True


def outbound_emails_note_due(*, limit: int = 20) -> int:
    """Note in Stripe the once-per-order emails whose note was lost (Stripe down, worker killed)."""
    due = (OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT, stripe_noted_at__isnull=True,
                                        kind__in=OutboundEmail.ONCE_PER_ORDER,
                                        sent_at__lt=timezone.now() - timedelta(minutes=1))
           .select_related("order").order_by("sent_at")[:limit])
    noted = 0
    for email in due:
        if not _note_sent_in_stripe(email):
            break  # Stripe is down: the next run tries again
        noted += 1
    return noted


# Seconds to wait before each retry of a failed send; then we give up and support is told.
EMAIL_RETRY_DELAYS = [30, 120, 600, 1800, 3600, 3 * 3600]
# A send that has not finished after this long was interrupted (worker killed mid-call).
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=5)


def outbound_email_send(*, email_id: int) -> OutboundEmail | None:
    """Send one owed email at most once; failures are retried with backoff, then flagged.

    The row is claimed (pending -> sending) in its own transaction before the ESP is called and
    marked sent after. If the process dies in between we cannot know whether the ESP accepted
    it, so the dispatcher marks it `uncertain` for a person to check rather than risk a second
    copy (docs/decisions/0003-outbox-at-most-once.md).
    """
    from billing.emails import build_message

    now = timezone.now()
    with transaction.atomic():
        email = (OutboundEmail.objects.select_for_update(skip_locked=True)
                 .filter(pk=email_id, status=OutboundEmail.Status.PENDING).first())
        if email is None:
            return None  # sent, being sent, or given up: nothing to do
        email.status = OutboundEmail.Status.SENDING
        email.claimed_at = now
        email.attempts += 1
        email.save(update_fields=["status", "claimed_at", "attempts"])

    try:
        message = build_message(email)
        message.send()
    except Exception as exc:  # the ESP, the network or a template: all retried the same way
        logger.warning("Email %s (%s) attempt %s failed: %s", email.id, email.kind, email.attempts, exc)
        with transaction.atomic():
            email = OutboundEmail.objects.select_for_update().get(pk=email_id)
            email.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if email.attempts > len(EMAIL_RETRY_DELAYS):
                email.status = OutboundEmail.Status.FAILED
            else:
                email.status = OutboundEmail.Status.PENDING
                email.next_attempt_at = timezone.now() + timedelta(
                    seconds=EMAIL_RETRY_DELAYS[email.attempts - 1])
            email.save(update_fields=["last_error", "status", "next_attempt_at"])
        return email
    failpoint("outbox.after_esp_accepted")

    anymail_status = getattr(message, "anymail_status", None)
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().get(pk=email_id)
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        if anymail_status is not None:
            message_id = anymail_status.message_id
            email.esp_message_id = "" if message_id is None else str(message_id)
            email.esp_status = ",".join(sorted(anymail_status.status or []))
        email.save(update_fields=["status", "sent_at", "last_error", "esp_message_id", "esp_status"])
        if email.order_id is not None:
            _record(email.order, actor="system", reason=f"Email sent: {email.get_kind_display()} to {email.recipient}")
    if email.kind in OutboundEmail.ONCE_PER_ORDER and email.stripe_noted_at is None:
        _note_sent_in_stripe(email)
    return email


def outbound_email_dispatch_due(*, limit: int = 100) -> dict:
    """Periodic safety net for the outbox: send what is due, flag interrupted sends."""
    now = timezone.now()
    stuck = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENDING,
                                         claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
    uncertain = stuck.update(status=OutboundEmail.Status.UNCERTAIN,
                             last_error="Sending was interrupted; check with the ESP before resending")
    due = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for email_id in due:
        result = outbound_email_send(email_id=email_id)
        sent += bool(result and result.status == OutboundEmail.Status.SENT)
    return {"due": len(due), "sent": sent, "uncertain": uncertain, "noted": outbound_emails_note_due()}


# --- Customer self-service --------------------------------------------------------------------

# One lookup sends one email listing at most this many of the address's recent orders.
STATUS_LINK_MAX_ORDERS = 5
# Orders worth a status link to whoever types their address: money moved or is moving (a
# PaymentIntent that succeeded or is processing, and what followed: refunds, disputes, review).
# An unpaid, failed or canceled order owes nobody an email; its owner can simply check out again.
# Nor does a bank check left unfinished: settle keeps it pending (an order marked processing
# before it did is settled first, below).
STATUS_LINK_STATES = [S.PROCESSING, S.PAID, S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.DISPUTED, S.NEEDS_REVIEW]


def order_status_links_send(*, email: str, card_last4: str = "") -> int:
    """Email this address one message listing its recent orders with money involved, each with its
    own status link, to that address only. Returns how many orders it lists (0: nothing sent).

    Someone other than the customer may have asked, so the email carries only our words (no name
    or other text the customer typed) and lists only orders with money involved. One lookup sends
    at most one email, so the page's per-address request limit (billing.views.LOOKUP_RATE_PER_EMAIL)
    is the cap on what lookups send to an address: no second count here that could send nothing
    while the page says it sent (docs/decisions/0013-access-is-proved.md). The page shows the same
    words whatever the count, so the form reveals nothing about who has bought.
    """
    address = normalize_email(email)
    # "Processing" recorded before Stripe's status was kept may be a bank check nobody finished:
    # ask Stripe, so no link leads to a page that waits for a payment that will never come.
    unsure = Order.objects.filter(email=address, state=S.PROCESSING, stripe_payment_intent_id__isnull=False).exclude(
        payment_status__in=MONEY_IN_FLIGHT)
    for order_id in unsure.values_list("id", flat=True)[:STATUS_LINK_MAX_ORDERS]:
        try:
            order_settle(order_id=order_id, actor="customer", reason="the customer asked for their order's link")
        except stripe_api.StripeError as exc:
            logger.warning("Could not check order %s with Stripe before a status link: %s", order_id, exc)
    orders = Order.objects.filter(email=address, state__in=STATUS_LINK_STATES, stripe_payment_intent_id__isnull=False)
    orders = orders.exclude(state=S.PROCESSING, payment_status__in=UNFINISHED_PAYMENT)
    if card_last4:
        orders = orders.filter(card_last4=card_last4)
    orders = list(orders.order_by("-created_at", "-id")[:STATUS_LINK_MAX_ORDERS])
    if not orders:
        return 0
    # The email hangs on the newest order; the others it lists are decided now, kept in its facts.
    with transaction.atomic():
        outbound_email_queue(order=orders[0], kind=OutboundEmail.Kind.STATUS_LINK,
                             facts={"order_ids": [order.id for order in orders]})
    return len(orders)


# A checkout with an address that already has the plan (or a payment in progress) emails that
# address once, whoever typed it, at most this often, and at most this many a day.
ALREADY_YOURS_EVERY = timedelta(minutes=5)
ALREADY_YOURS_PER_DAY = 5


def order_already_yours_send(*, order: Order) -> bool:
    """Tell the address of `order` that someone started a checkout with it and we charged nothing.

    The person at checkout may not be the customer, so the email goes only to the order's own
    address and carries only our words. One per address per ALREADY_YOURS_EVERY and at most
    ALREADY_YOURS_PER_DAY a day; the address lock makes two checkouts at the same moment count each
    other. Only these emails count: when none goes, the checkout page says one already went
    recently, which Find my order's emails would not make true (nor do these use up its lookups).
    Returns whether an email was queued.
    """
    now = timezone.now()
    with transaction.atomic():
        locks.address_lock(order.email)
        sent = OutboundEmail.objects.filter(recipient=order.email, kind=OutboundEmail.Kind.ALREADY_YOURS)
        if sent.filter(created_at__gte=now - ALREADY_YOURS_EVERY).exists():
            return False
        if sent.filter(created_at__gte=now - timedelta(days=1)).count() >= ALREADY_YOURS_PER_DAY:
            logger.warning("Checkout notice for %s not sent: the day's emails are used up", order.email)
            return False
        outbound_email_queue(order=order, kind=OutboundEmail.Kind.ALREADY_YOURS)
    return True


def outbound_email_record_esp_event(*, message_id: str, event_type: str, description: str = "") -> int:
    """What the ESP later tells us about a sent email (delivered, bounced, …); returns rows updated."""
    if not message_id:
        return 0
    email = OutboundEmail.objects.filter(esp_message_id=message_id).select_related("order").first()
    if email is None:
        return 0
    OutboundEmail.objects.filter(pk=email.pk).update(esp_status=event_type)
    if event_type in {"bounced", "rejected", "failed", "complained"} and email.order_id is not None:
        _record(email.order, actor="system",
                reason=f"Email {event_type}: {email.get_kind_display()} to {email.recipient} {description}".strip())
    return 1


def order_buyer_details_record(*, order: Order, company_name: str, vat_number: str) -> Order:
    """Freeze the company and VAT number this order's receipt prints. The checkout view passes them
    only from the account of a customer who proved the address (signed in, or a Renew link); once
    the order is paid they never change, so a receipt issued stays the receipt issued."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.paid_at is None and (order.buyer_company_name, order.buyer_vat_number) != (company_name, vat_number):
            order.buyer_company_name, order.buyer_vat_number = company_name, vat_number
            order.save(update_fields=["buyer_company_name", "buyer_vat_number", "updated_at"])
    return order
