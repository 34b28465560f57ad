"""Checkout: write the intent to buy before any money moves, find an earlier purchase before
offering a second payment, and set up the address's Stripe Customer and the order's PaymentIntent."""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Entitlement, normalize_email
from billing import locks, stripe_api
from billing.errors import PaymentSetupFailed
from billing.models import Order, OrderState, Plan, StripeCustomer
from billing.services.history import event_order_created, event_payment_set_up
from billing.services.settle import order_settle
from config.failpoints import failpoint

logger = logging.getLogger(__name__)
S = OrderState

# Past this age Stripe may have forgotten our idempotency key (it keeps them 24 hours), so
# before creating anything for an older order we search Stripe for what already exists.
IDEMPOTENCY_KEY_SAFE_AGE = timedelta(hours=23)

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
    # A repeated nonce is not looked up first: the same browser's unpaid order is found under the
    # address's lock below, and any other repeat fails the INSERT on the nonce's unique index.
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
            event_order_created(order, actor=actor, renewal=renewal)
    except IntegrityError:
        # The same form submitted again (or two submits raced): the first one owns the order.
        if checkout_nonce is None:
            raise
        return Order.objects.get(checkout_nonce=checkout_nonce)
    failpoint("checkout.after_order_commit")
    return order


# States in which an earlier order means the customer already has (or is getting) the plan: money
# taken or in flight. Pending and failed orders hold no money (settle keeps an unfinished bank
# check pending), so checking out again simply goes to payment.
PURCHASED = {S.PROCESSING, S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.DISPUTED}


@dataclass(frozen=True)
class LatestPurchase:
    """What order_latest_purchase found: the order exactly as the database has it, and whether
    Stripe could not be asked about it (`unconfirmed`: its payment may have gone through whatever
    the order says, so checkout treats it as possibly paid and never offers a second payment)."""

    order: Order
    unconfirmed: bool = False


def order_latest_purchase(*, email: str, plan: Plan, actor: str = "checkout") -> LatestPurchase | None:
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
                return LatestPurchase(order, unconfirmed=True)  # the order as stored; its payment unknown
        if order.state == S.ACTIVE:
            entitlement = Entitlement.objects.filter(order=order).first()
            if entitlement is None or entitlement.revoked_at is not None or entitlement.ends_at <= now:
                continue  # time that has run out: buying again is simply buying
        if order.state not in PURCHASED:
            unpaid = unpaid or order  # not paid, nothing in flight: look on for a real purchase
            continue
        return LatestPurchase(order)
    return LatestPurchase(unpaid) if unpaid is not None else None


def stripe_customer_for(*, order: Order) -> str:
    """The Stripe Customer the order's payment goes on: none ('') for the address's first order,
    the address's one Customer (decision 0015) for every later one, made then (decision 0034).

    An address that buys once costs Stripe no Customer, and its purchase one call less; an address
    that comes back gets its Customer on its second order, as Stripe Checkout makes a customer only
    when it is needed. "First" means no order of the address has a smaller id. order_create writes
    an address's orders one at a time under the address's lock, so that is a fixed fact of the
    order: a retry after a crash decides as the first attempt did, which the PaymentIntent's
    idempotency key requires (Stripe refuses a repeated key with other parameters).

    The Customer is kept in StripeCustomer; an address that paid before the mapping existed keeps
    the customer of its earliest order. It is made with an idempotency key of the address alone
    (and parameters that depend on nothing else), so two checkouts of one address at once, or a
    retry after a crash, make one customer. Called outside any transaction.
    """
    email = normalize_email(order.email)
    stored, earliest, came_before = _address_customers(email, before_order_id=order.id)
    if not came_before:
        return ""
    if stored:
        return stored
    customer_id = earliest
    if not customer_id:
        digest = hashlib.sha256(email.encode()).hexdigest()[:40]
        customer_id = stripe_api.customer_create(idempotency_key=f"backstop-customer-{digest}", email=email,
                                                 metadata={"backstop_email": email}).id
        failpoint("checkout.after_customer")
    # One statement: if another checkout stored the address's customer a moment ago, theirs stays
    # (the same customer, by the idempotency key), the INSERT returns nothing, and theirs is read.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO billing_stripecustomer (email, stripe_customer_id, created_at) "
                       "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING stripe_customer_id",
                       [email, customer_id, connection.ops.adapt_datetimefield_value(timezone.now())])
        stored = cursor.fetchone()
    return stored[0] if stored else StripeCustomer.objects.get(email=email).stripe_customer_id


def _address_customers(email: str, *, before_order_id: int) -> tuple[str | None, str | None, bool]:
    """The address's stored Stripe customer, that of its earliest order with one, and whether it
    has an order older than `before_order_id`: one query (one more statement on every purchase
    otherwise)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT stripe_customer_id FROM billing_stripecustomer WHERE email = %s), "
            "(SELECT stripe_customer_id FROM billing_order WHERE email = %s AND stripe_customer_id <> '' "
            "ORDER BY created_at LIMIT 1), "
            "EXISTS (SELECT 1 FROM billing_order WHERE email = %s AND id < %s)",
            [email, email, email, before_order_id])
        return cursor.fetchone()


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
            customer = existing.customer
            customer_id = (customer if isinstance(customer, str) else customer.id) if customer else ""
        else:
            # What the sweep needs to recreate the order if our row is ever lost (a restore).
            metadata = {"order_id": str(order.id), "reference": order.reference, "email": order.email,
                        "plan": order.plan.code}
            customer_id = stripe_customer_for(order=order)
            # Stripe's own receipt only if asked for (settings.STRIPE_RECEIPT_EMAILS): ours is sent anyway.
            receipt = {"receipt_email": order.email} if settings.STRIPE_RECEIPT_EMAILS else {}
            payment_intent = stripe_api.payment_intent_create(
                idempotency_key=f"backstop-order-{order.public_id}-payment-intent",
                amount=order.amount_cents,
                currency=order.currency,
                **({"customer": customer_id} if customer_id else {}),
                # Cards only, whatever the Dashboard enables: a delayed method would stay
                # `processing` for days (docs/decisions/0029-cards-only.md).
                payment_method_types=["card"],
                **receipt,
                description=f"{order.plan.name} plan{' renewal' if order.renewal else ''}, order {order.reference}",
                # The bank line reads e.g. "ACME* 7F3K9QX2" (the prefix is the Stripe account's):
                # recognisable, and support can find the order from it.
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
            event_payment_set_up(locked, actor=actor, customer_id=customer_id, payment_intent_id=payment_intent.id)
    # The caller's order as the lock read it (what refresh_from_db() would read again).
    for field in Order._meta.concrete_fields:
        setattr(order, field.attname, getattr(locked, field.attname))
    return payment_intent
