"""Billing reads: what views, the API and emails show. No writes here."""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, Min, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Charge, PaymentIntent

from accounts.access import access_until
from accounts.models import Entitlement
from accounts.periods import days_left as calendar_days_left
from accounts.periods import lay_end_to_end
from billing.models import Order, OrderEvent, OrderState, ReconcileRun
from billing.money import format_money
from billing.receipts import Receipt, ReceiptRefund
from billing.tokens import order_status_token, renew_path
from config.queries import by_unique_key
from outbox.models import OutboundEmail

S = OrderState


@dataclass(frozen=True)
class CustomerStatus:
    """What the customer is told about an order: honest about money, in plain words."""

    # not_charged | checking | failed | processing | activating | active | refunding | refunded | canceled
    # | refund_sent_back | attention
    code: str
    charged: bool
    headline: str
    message: str
    final: bool  # nothing will change without the customer or support doing something
    # Money is held without service: the customer may take it back now instead of waiting.
    refund_offer: bool = False
    # The line on the customer's bank statement, once Stripe has charged.
    statement_descriptor: str = ""
    # Nothing was taken and the customer can act: the words of the button to the payment step
    # ("Finish paying", "Pay now", "Try again"); empty when there is nothing to pay.
    pay_label: str = ""

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class OrderAccess:
    """The time an order bought, and what the customer has in all."""

    granted: bool  # the order gave access at some point (it has an entitlement)
    in_force: bool  # and still does (not revoked)
    starts_at: datetime | None
    ends_at: datetime | None
    stacked: bool  # its time starts after time the customer had already paid for
    # When the customer's paid time runs out, across all their payments; None if it has.
    until: datetime | None


def order_access(order: Order, *, now: datetime | None = None) -> OrderAccess:
    # One query for both: the order's own period (revoked or not) and the customer's periods in
    # force, whose latest end is accounts.access.access_until's answer.
    now = now or timezone.now()
    wanted = Q(order_id=order.id)
    if order.user_id:
        wanted |= Q(user_id=order.user_id, revoked_at__isnull=True, ends_at__gt=now)
    periods = list(Entitlement.objects.filter(wanted).order_by())  # unsorted: read as a set below (config/queries.py)
    entitlement = next((e for e in periods if e.order_id == order.id), None)
    ends = [e.ends_at for e in periods
            if order.user_id and e.user_id == order.user_id and e.revoked_at is None and e.ends_at > now]
    until = max(ends) if ends else None
    if entitlement is None:
        return OrderAccess(False, False, None, None, False, until)
    return OrderAccess(True, entitlement.revoked_at is None, entitlement.starts_at, entitlement.ends_at,
                       entitlement.starts_at > order.paid_at if order.paid_at else False, until)


def access_until_without(order: Order, *, now: datetime | None = None) -> datetime | None:
    """When the customer's paid time would run out if this order's time were taken back: the others
    re-laid end to end, as billing.services does on a refund."""
    now = now or timezone.now()
    if not order.user_id:
        return None
    others = (Entitlement.objects.filter(user_id=order.user_id, revoked_at__isnull=True)
              .exclude(order_id=order.id).select_related("order", "plan").order_by("id"))
    periods = lay_end_to_end([(e.order.paid_at or e.starts_at, e.plan.duration_months, e.extra_days) for e in others])
    ends = [end for _start, end in periods if end > now]
    return max(ends) if ends else None


def customer_day(moment: datetime) -> str:
    """A date as the customer's pages and emails print it ("December 1, 2027")."""
    return f"{timezone.localtime(moment):%B %-d, %Y}"


def access_after_refund(order: Order, access: OrderAccess | None = None) -> str:
    """What the customer still has once this order's money went back in full; nothing if it never
    gave access. `access` is order_access(order), when the caller already has it."""
    access = access or order_access(order)
    if not access.granted:
        return ""
    if access.until:
        return (f" Your {order.plan.name} plan stays active until {customer_day(access.until)}, "
                "paid for by your other payment.")
    return f" Your {order.plan.name} plan ended with the refund."


# Orders with money on them, or on its way: what makes an account someone's.
_MONEY_MOVED = [S.PROCESSING, S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.DISPUTED, S.REFUND_PENDING, S.REFUNDED]


def account_made_by_orders(user, public_ids) -> bool:
    """Is this account wholly the work of these orders (public id hexes, e.g. those one browser
    made)? One of them created it, every payment on it is one of them, nobody has set a password
    on it, and it is not staff's. Only then may that browser treat the account as its own (enter it
    with one click, see its dates) without proving the address: nothing in it came from anyone else."""
    if user is None or not user.is_active or user.is_staff or user.has_usable_password():
        return False
    # Two indexed queries, on purpose: one query with "or an order holding a period of this account"
    # joins entitlements under an OR, which PostgreSQL answers by scanning every order (0.81 ms
    # against 0.07 for these two with 250 orders in `make load`, and growing with the table).
    paid = list(Order.objects.filter(Q(email=user.email) | Q(user_id=user.id))
                .filter(Q(paid_at__isnull=False) | Q(state__in=_MONEY_MOVED)).only("public_id", "created_at")
                .order_by())  # unsorted: read as a set (config/queries.py)
    if not paid or not {o.public_id.hex for o in paid} <= set(public_ids):
        return False
    if user.date_joined < min(o.created_at for o in paid):
        return False  # the address had an account before any of these orders: someone else's, maybe
    return not Entitlement.objects.filter(user_id=user.id).exclude(order_id__in=[o.id for o in paid]).exists()


# Within this many days of the end, the account page puts Renew first.
RENEW_SOON_DAYS = 30


def account_overview(user) -> dict:
    """The customer's plan, until when and which payment's period holds that end (`current`), and
    every payment and refund with its reference and the period it paid for (`order.period`)."""
    now = timezone.now()
    entitlements = list(Entitlement.objects.filter(user=user).select_related("plan", "order"))
    current = next((e for e in entitlements if e.is_active(now)), None)
    orders = list(user.orders.exclude(paid_at__isnull=True).select_related("plan").order_by("-paid_at"))
    for order in orders:
        # Every payment Stripe took has a receipt, reached by the order's own signed link.
        order.receipt_url = (reverse("billing:receipt", kwargs={"token": order_status_token(order)})
                             if order.amount_received_cents is not None else "")
    until = access_until(user, now=now)
    # The end of all paid time is the end of the last period stacked: its payment is the one to
    # name beside that date (the first payment's period ends a year earlier).
    holder = next((e for e in entitlements if e.revoked_at is None and e.ends_at == until), None) if until else None
    if holder is not None:
        current = holder
    # Each payment with the period it paid for (none for one that never gave access).
    periods = {e.order_id: e for e in entitlements}
    for order in orders:
        order.period = periods.get(order.id)
    # Calendar days to the end date (0 on the day), counted as the reminder emails count them.
    days_left = calendar_days_left(until, now) if until else None
    return {"current": current, "entitlements": entitlements, "orders": orders,
            "access_until": until, "days_left": days_left,
            "renew_soon": days_left is not None and days_left <= RENEW_SOON_DAYS,
            "renew_url": renew_path(user)}


def orders_with_refund_sent_back():
    """Refunded orders whose refund the customer's bank sent back and nobody has yet returned
    another way: those whose Order.refund_sent_back_cents is above zero, as one query."""
    return Order.objects.filter(state=S.REFUNDED, amount_received_cents__gt=F("amount_refunded_cents")
                                + F("returned_another_way_cents"))


def order_created_account(order: Order) -> bool:
    """Did this very order create its account, and is it still that order's alone (no password,
    no other payment, not staff)?"""
    return account_made_by_orders(order.user, {order.public_id.hex})


def order_customer_status(order: Order, *, checked: bool = True, proved: bool = False) -> CustomerStatus:
    """What we tell the customer. `checked` says whether the order reflects Stripe's word as of
    a moment ago; when it does not and money may have moved, we say we are checking.

    `proved`: the reader proved they read the order's address (a link we sent there, signed in
    with it). Anyone else holding the order's link (the browser that paid with someone's address)
    learns nothing of the account it went to: no dates beyond this order's own period, and those
    only when this order created the account (order_created_account).

    Once money has moved, every amount is Stripe's (what it took, what it refunded), whatever
    the order asked for.
    """
    paid = order.paid_display
    descriptor = order.statement_descriptor if order.paid_at else ""

    def status(*args, **kwargs):
        return CustomerStatus(*args, statement_descriptor=descriptor, **kwargs)

    if order.held_since is not None and order.state not in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED):
        deadline = f"{timezone.localtime(order.refund_deadline_at):%B %-d at %H:%M %Z}"
        if order.state == S.NEEDS_REVIEW:
            # Nothing finishes it on its own: a person checks it, or the deadline refunds it.
            return status("attention", True, "Payment received — a person is checking your order",
                          f"We have your payment of {paid}. Before your account can be switched on, someone on "
                          f"our team needs to check it. Unless they finish it by {deadline}, we refund you in full "
                          "automatically — you don't need to ask. You won't be charged again.",
                          final=False, refund_offer=True)
        return status("attention", True, "Payment received — we're finishing your order",
                      f"We have your payment of {paid}, and your account is being set up. If it "
                      f"isn't ready by {deadline}, we refund you in full automatically — you don't "
                      "need to ask. You won't be charged again.", final=False, refund_offer=True)
    if not checked and order_needs_settle(order) and order.state != S.PAID:
        return status("checking", False, "Checking your payment with our payment provider",
                      "We're asking Stripe, our payment provider, whether your payment went through. "
                      "This takes a few seconds and this page updates by itself. You will never be "
                      "charged twice for this order.", final=False)
    # Pending and failed: nothing was taken, whatever the customer did on the payment step, and
    # the button takes them back to it (where Stripe.js finishes a bank check, or takes a card).
    if order.state == S.PENDING and order.payment_status == "requires_action":
        return status("not_charged", False, "Not charged — your bank is waiting for you to confirm",
                      f"Your bank asked you to confirm this payment of {order.amount_display}, and it hasn't been "
                      "confirmed, so nothing has been taken. Finish paying to confirm it with your bank, or "
                      "pay with another card.", final=False, pay_label="Finish paying")
    if order.state == S.PENDING:
        return status("not_charged", False, "Not charged yet",
                      f"We have not taken any money. Your order is ready for payment of {order.amount_display}.",
                      final=False, pay_label="Pay now")
    if order.state == S.FAILED:
        return status("failed", False, "Payment didn't go through — you have not been charged",
                      f"{order.attention_reason or 'The card was declined.'} "
                      "You can try again with the same or another card.", final=True, pay_label="Try again")
    if order.state == S.PROCESSING:
        # Stripe's own "processing" (or an authorised card): money is on its way, never a bank check
        # waiting for the customer (that order is pending, above).
        return status("processing", False, "Confirming your payment",
                      "Your bank is confirming the payment. This usually takes a few seconds; "
                      "you will not be charged twice.", final=False)
    if order.state == S.PAID:
        return status("activating", True, "Payment received — activating your account",
                      f"We have your payment of {paid}. Your account is being switched on; "
                      "this usually takes a few seconds.", final=False)
    if order.state == S.ACTIVE:
        return status("active", True, "You're all set", _active_message(order, proved=proved), final=True)
    if order.state == S.REFUND_PENDING:
        return status("refunding", True, "Refund on its way",
                      f"We're refunding {order.refundable_display if order.refundable_cents else paid} to you. "
                      "Banks usually show it within 5–10 days." + access_after_refund(order), final=True)
    if order.state == S.REFUNDED and order.refund_sent_back_cents:
        return status("refund_sent_back", True, "Your bank sent the refund back",
                      f"We refunded your payment of {paid}, but your bank sent the refund of "
                      f"{order.refund_sent_back_display} back to us, which happens when a card has been closed or "
                      "replaced. So it has not reached you: we hold it, and someone on our team will contact you "
                      "at this address to return it another way." + access_after_refund(order), final=True)
    if order.state == S.REFUNDED and order.returned_another_way_cents:
        return status("refunded", False, "Refunded",
                      f"Your payment of {paid} has been refunded in full. Your bank sent our refund to your card "
                      f"back, so we returned {order.returned_another_way_display} to you another way."
                      + access_after_refund(order), final=True)
    if order.state == S.REFUNDED:
        return status("refunded", False, "Refunded",
                      f"Your payment of {paid} has been refunded in full. Banks usually show "
                      "it within 5–10 days." + access_after_refund(order), final=True)
    if order.state == S.CANCELED:
        if order.payment_status == "canceled":
            return status("canceled", False, "Order canceled — you have not been charged",
                          "The payment for this order was never finished, so it was canceled: nothing was taken "
                          "and nothing will be. You can start again whenever you like.", final=True)
        return status("canceled", False, "Order canceled — you have not been charged",
                      "This order was canceled before any payment was taken. You can start again whenever you "
                      "like.", final=True)
    if order.state == S.DISPUTED:
        return status("attention", True, "Your bank has asked about this payment",
                      "Your bank opened a dispute about this payment, so we are looking at it with "
                      "them. Your access carries on meanwhile. If you did not mean to dispute it, "
                      "reply to your confirmation email and we will sort it out together.",
                      final=True)
    # needs_review: money may be held and a person is on it.
    return status("attention", order.paid_at is not None, "We're looking at your order",
                  "Something needs a human check before we can finish. If you were charged, "
                  "your money is safe: we will either activate your account or refund you in "
                  "full, and email you within one business day.", final=False)


def _active_message(order: Order, *, proved: bool = False) -> str:
    access = order_access(order)
    refunded = f" {order.refunded_display} of it has been refunded." if order.amount_refunded_cents else ""
    if not access.in_force:
        return f"Payment of {order.paid_display} received.{refunded}"
    if not proved and not order_created_account(order):
        # The address already had an account (or has had other payments since): its dates are
        # for someone who proves they read that address.
        return (f"Payment of {order.paid_display} received.{refunded} We've added {order.plan.duration_months} "
                "months to the plan of the account for this address and emailed it.")
    if access.stacked:
        plan = (f"It adds {order.plan.duration_months} months after the time you had already paid for: "
                f"{customer_day(access.starts_at)} to {customer_day(access.ends_at)}.")
    else:
        plan = f"Your {order.plan.name} plan is active until {customer_day(access.ends_at)}."
    if access.until and access.until > access.ends_at:
        plan += f" With your other payments, it runs until {customer_day(access.until)}."
    return f"Payment of {order.paid_display} received.{refunded} {plan}"


def order_for_page(order_id: int) -> Order:
    """The order as a customer's page shows it, read again (another path has just settled it):
    with its plan and account, which the page asks for, in the same query."""
    return Order.objects.select_related("plan", "user").get(pk=order_id)


def order_needs_settle(order: Order) -> bool:
    """Is Stripe possibly ahead of us? (Only then is asking Stripe worth a round-trip.)"""
    return bool(order.stripe_payment_intent_id) and order.state in (S.PENDING, S.PROCESSING, S.FAILED, S.PAID)


def order_for_stripe_object(obj: dict) -> Order | None:
    """The order behind a Stripe object from an event (PaymentIntent, Charge, Refund, Dispute):
    by the PaymentIntent id we stored, else by the reference in our metadata (never by the row id
    in it: after a restore from a backup, that id may belong to another order)."""
    pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(pi_id, dict):
        pi_id = pi_id.get("id")
    # With its reference: settle names the order in its log lines and takes it as read (order=).
    fields = ("id", "reference", "state", "stripe_payment_intent_id", "stripe_charge_id")
    if pi_id:
        order = by_unique_key(Order.objects.filter(stripe_payment_intent_id=pi_id).only(*fields))
        if order is not None:
            return order
    reference = (obj.get("metadata") or {}).get("reference")
    if reference:
        return by_unique_key(Order.objects.filter(reference=reference).only(*fields))
    return None


# Events that can only confirm what an order past its payment already shows: Stripe never takes a
# succeeded PaymentIntent back to processing or failure, and its charge stays the same charge.
_CONFIRMING_EVENTS = {
    "payment_intent.succeeded", "payment_intent.processing", "payment_intent.requires_action",
    "payment_intent.payment_failed", "charge.succeeded", "charge.failed",
}
_PAST_PAYMENT = {OrderState.ACTIVE, OrderState.REFUND_PENDING, OrderState.REFUNDED, OrderState.DISPUTED}


def stripe_event_is_old_news(event: dict, order: Order) -> bool:
    """True when the event cannot move the order: it confirms a payment the order already
    settled. Refunds and disputes are never old news here; settle weighs them."""
    if event.get("type") not in _CONFIRMING_EVENTS or order.state not in _PAST_PAYMENT:
        return False
    obj = event["data"]["object"]
    if obj.get("object") == "payment_intent":
        return obj.get("id") == order.stripe_payment_intent_id
    if obj.get("payment_intent") != order.stripe_payment_intent_id:
        return False
    return obj.get("status") == "failed" or obj.get("id") == order.stripe_charge_id


def payment_intent_from_mirror(payment_intent_id: str):
    """The PaymentIntent as dj-stripe last mirrored it, when it can be trusted without Stripe.

    The pull sync keeps the mirror up to about a minute behind Stripe, so only final states are
    trusted (succeeded with its charge mirrored, or canceled), which Stripe never leaves: a stale
    "requires_payment_method" must never move an order backwards, so anything else returns None.
    """
    data = PaymentIntent.objects.filter(id=payment_intent_id).values_list("stripe_data", flat=True).first()
    if not data or data.get("status") not in ("succeeded", "canceled"):
        return None
    data = dict(data)
    if data["status"] == "succeeded":
        charge_id = data.get("latest_charge")
        charge_id = charge_id.get("id") if isinstance(charge_id, dict) else charge_id
        charge = None
        if charge_id:
            charge = Charge.objects.filter(id=charge_id).values_list("stripe_data", flat=True).first()
        if not charge:
            return None
        data["latest_charge"] = charge
    return stripe.convert_to_stripe_object(data)


# --- The sweep's questions, asked of the mirror and the orders together ------------------------
# Plain SQL that PostgreSQL and SQLite (3.38+, for ->>) both run: one statement per question,
# whatever the number of orders, instead of one Stripe call per order.

# Orders that are not finished while the mirror shows their payment succeeded (or whose money
# is held for review without the customer having been told yet). This reads every order in
# those states every run, failed and canceled ones included, which pile up with history: each
# costs one probe of backstop_charge_succeeded_cover_idx, about 2 µs (docs/reconcile.md#benchmark).
# `open_orders` keeps those with any succeeded charge; the CASE around EXISTS is deliberate: it
# keeps PostgreSQL from turning the probe into a join that reads every charge, which its cost
# model can prefer once open orders are a couple of percent of all orders, and which was 6-10
# times slower at a million. Then the exact test on those few orders.
_OPEN_ORDERS_BEHIND_STRIPE = """
WITH open_orders AS MATERIALIZED (
  SELECT o.id, o.reference, o.state, o.stripe_payment_intent_id, o.held_since
  FROM billing_order o
  WHERE o.state IN ('pending', 'processing', 'failed', 'paid', 'canceled', 'needs_review')
    AND CASE WHEN EXISTS (SELECT 1 FROM djstripe_charge s
                          WHERE s.payment_intent_id = o.stripe_payment_intent_id AND s.status = 'succeeded')
             THEN 1 ELSE 0 END = 1
)
SELECT o.id, o.reference, o.state, c.id, c.payment_intent_id
FROM open_orders o
JOIN djstripe_charge c ON c.payment_intent_id = o.stripe_payment_intent_id
WHERE c.status = 'succeeded'
  AND c.created < %s
  AND (o.state IN ('pending', 'processing', 'failed', 'paid', 'canceled')
       OR (o.state = 'needs_review' AND o.held_since IS NULL
           AND CAST(c.stripe_data -> 'refunded' AS TEXT) <> 'true'))
ORDER BY c.created
"""

# Succeeded Backstop charges (our reference in the metadata) whose order is missing, or that
# Stripe shows refunded, disputed or for another amount than the order says. Limited to the
# mirror rows that changed since `window_start` (the pull sync touches djstripe_updated), unless
# a full scan is asked for.
#
# In two steps, because reading stripe_data is what costs (about 10 µs a row: it is TOASTed,
# so each -> is a lookup plus a decompression) and a million rows must not all be read:
# 1. `candidates` reads indexes only (billing/migrations/0003_mirror_indexes.py): a charge with
#    no order, an order that records a refund, a currency or amount that differs (the amount
#    from dj-stripe's own `amount` column, which it fills from the same object, in major units:
#    Stripe's integer / 100 for every currency), or a charge that is refunded or disputed at all
#    (backstop_charge_touched_idx). Every row the exact test below can report is among them.
# 2. The exact test, on the candidates only, reading stripe_data as before, cheap columns first.
# MATERIALIZED keeps the planner from merging the two steps (PostgreSQL 12+, SQLite 3.35+).
_BACKSTOP_CHARGES_OUT_OF_STEP = """
WITH candidates AS MATERIALIZED (
  SELECT c.djstripe_id
  FROM djstripe_charge c
  LEFT JOIN billing_order o ON o.stripe_payment_intent_id = c.payment_intent_id
  LEFT JOIN djstripe_charge t ON t.payment_intent_id = c.payment_intent_id
    AND t.status = 'succeeded'
    AND (CAST(t.stripe_data -> 'disputed' AS TEXT) = 'true'
         OR CAST(t.stripe_data -> 'refunded' AS TEXT) = 'true'
         OR CAST(t.stripe_data ->> 'amount_refunded' AS TEXT) <> '0')
  WHERE c.status = 'succeeded'
    AND c.payment_intent_id IS NOT NULL
    {window}
    AND (o.stripe_payment_intent_id IS NULL
         OR o.amount_refunded_cents <> 0
         OR c.currency <> o.currency
         OR CAST(ROUND(c.amount * 100) AS INTEGER) <> o.amount_cents
         OR t.payment_intent_id IS NOT NULL)
)
SELECT c.id, c.payment_intent_id, c.metadata ->> 'reference', o.id, o.state,
  CASE
    WHEN o.id IS NULL THEN 'adopt'
    WHEN CAST(c.stripe_data -> 'disputed' AS TEXT) = 'true' AND o.state IN ('paid', 'active') THEN 'dispute'
    WHEN CAST(c.stripe_data ->> 'amount' AS INTEGER) <> o.amount_cents
         OR c.currency <> o.currency THEN 'mismatch'
    ELSE 'refund'
  END
FROM djstripe_charge c
LEFT JOIN billing_order o ON o.stripe_payment_intent_id = c.payment_intent_id
WHERE c.djstripe_id IN (SELECT djstripe_id FROM candidates)
  AND c.status = 'succeeded'
  AND c.payment_intent_id IS NOT NULL
  AND c.metadata ->> 'reference' LIKE 'BK-%%'
  AND (o.id IS NULL
       OR (o.state IN ('paid', 'active') AND CAST(c.stripe_data -> 'disputed' AS TEXT) = 'true')
       OR (o.state NOT IN ('needs_review', 'refund_pending', 'refunded')
           AND (c.currency <> o.currency
                OR (CAST(ROUND(c.amount * 100) AS INTEGER) <> o.amount_cents
                    AND CAST(c.stripe_data ->> 'amount' AS INTEGER) <> o.amount_cents)))
       OR (o.state NOT IN ('refunded', 'refund_pending') AND CAST(c.stripe_data -> 'refunded' AS TEXT) = 'true')
       OR CAST(c.stripe_data ->> 'amount_refunded' AS INTEGER) <> o.amount_refunded_cents)
ORDER BY c.created
"""


# Stripe statuses of a payment nobody finished (billing.services.UNFINISHED_PAYMENT); "" is an
# order settle has not read since Stripe's status was kept (it may be one too).
_UNFINISHED_OR_UNKNOWN = ["", "requires_action", "requires_payment_method", "requires_confirmation"]


def orders_with_unfinished_payment(*, unchanged_since, limit: int = 100) -> list[int]:
    """Ids of open orders whose PaymentIntent, as settle last read it, has been unfinished since
    before `unchanged_since` (or, never read, was created before it), oldest first."""
    return list(Order.objects.filter(state__in=[S.PENDING, S.FAILED, S.PROCESSING],
                                     stripe_payment_intent_id__isnull=False,
                                     payment_status__in=_UNFINISHED_OR_UNKNOWN)
                .annotate(unfinished_since=Coalesce("payment_status_at", "created_at"))
                .filter(unfinished_since__lt=unchanged_since)
                .order_by("unfinished_since").values_list("id", flat=True)[:limit])


@dataclass(frozen=True)
class Discrepancy:
    case: str  # settle | hold | adopt | refund | dispute | mismatch
    charge_id: str
    payment_intent_id: str
    reference: str
    order_id: int | None
    order_state: str | None


def orders_behind_stripe(*, charged_before) -> list[Discrepancy]:
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_ORDERS_BEHIND_STRIPE, [charged_before])
        return [Discrepancy("hold" if state == S.NEEDS_REVIEW else "settle", charge, pi, reference, order_id, state)
                for order_id, reference, state, charge, pi in cursor.fetchall()]


def backstop_charges_out_of_step(*, changed_since=None) -> list[Discrepancy]:
    window = "" if changed_since is None else "AND c.djstripe_updated >= %s"
    with connection.cursor() as cursor:
        cursor.execute(_BACKSTOP_CHARGES_OUT_OF_STEP.format(window=window),
                       [] if changed_since is None else [changed_since])
        return [Discrepancy(case, charge, pi, reference or "", order_id, state)
                for charge, pi, reference, order_id, state, case in cursor.fetchall()]


def entitlements_renewal_email_candidates(*, ending_after, ending_by):
    """Plans ending in (ending_after, ending_by] whose holder may be owed a renewal reminder or the
    email on the day it ends: oldest end first, with user, order and plan.

    Only the last stretch of paid time counts: an entitlement is left out when its holder has
    another unrevoked one ending later (purchases stack end to end, so they have renewed). Also
    left out: revoked ones (refunded or ended by support), orders no longer active (refunded,
    disputed), staff, deactivated accounts and customers who turned reminders off.
    """
    renewed = Entitlement.objects.filter(user=OuterRef("user"), revoked_at__isnull=True,
                                         ends_at__gt=OuterRef("ends_at"))
    return (Entitlement.objects
            .filter(ends_at__gt=ending_after, ends_at__lte=ending_by, revoked_at__isnull=True,
                    order__state=OrderState.ACTIVE, user__is_staff=False, user__is_active=True,
                    user__renewal_reminders=True)
            .exclude(Exists(renewed))
            .select_related("user", "order", "plan")
            .order_by("ends_at", "id"))


# --- Receipts ------------------------------------------------------------------------------------

# Stripe's card brand codes, as a receipt spells them.
CARD_BRANDS = {"amex": "American Express", "cartes_bancaires": "Cartes Bancaires", "diners": "Diners Club",
               "discover": "Discover", "jcb": "JCB", "mastercard": "Mastercard", "unionpay": "UnionPay",
               "visa": "Visa"}
# Refunds Stripe has made or is making; a failed or canceled one gave nothing back.
REFUND_COUNTED = {"succeeded", "pending", "requires_action"}


def order_receipt(order: Order, *, proved: bool = False):
    """What the receipt of this order's payment says (billing.receipts.Receipt), or None if no
    money was received. Every amount is Stripe's, in Stripe's currency; the buyer's name, company
    and VAT number are the ones frozen on the order at checkout, never the live account's.

    The period it covers is this payment's own. When it was stacked after other time on the account,
    its start is another payment's end: those dates only for a reader who `proved` the address."""
    if order.amount_received_cents is None or order.paid_at is None:
        return None
    refunds = [r for r in order.refunds.all() if r.status in REFUND_COUNTED]
    lines = [ReceiptRefund(refunded_at=r.created_at, amount=r.amount_display, in_progress=r.status != "succeeded")
             for r in refunds]
    # Stripe's total on the charge is the word on how much went back; a part of it whose refund
    # we have not recorded yet still shows, as a line without a date.
    unlisted = order.amount_refunded_cents - sum(r.amount_cents for r in refunds)
    if unlisted > 0:
        lines.append(ReceiptRefund(refunded_at=None, amount=format_money(unlisted, order.paid_currency),
                                   in_progress=False))
    # A refund the bank sent back that a person then returned outside Stripe (a bank transfer).
    returned = order.returned_another_way_cents and order.events.filter(kind=OrderEvent.Kind.RETURNED_ANOTHER_WAY)
    for event in returned or []:
        lines.append(ReceiptRefund(refunded_at=event.created_at, in_progress=False,
                                   amount=format_money(event.data["amount_cents"], event.data["currency"])))
    given_back = order.amount_refunded_cents + order.returned_another_way_cents
    months = order.plan.duration_months
    brand = CARD_BRANDS.get(order.card_brand, order.card_brand.replace("_", " ").title() or "Card")
    return Receipt(
        reference=order.reference,
        seller_name=settings.SELLER_NAME,
        seller_address=tuple(settings.SELLER_ADDRESS),
        buyer_name=order.full_name,
        buyer_email=order.email,
        company_name=order.buyer_company_name,
        vat_number=order.buyer_vat_number,
        description=f"{order.plan.name} plan, {months} month{'s' if months != 1 else ''}, one payment",
        paid_at=order.paid_at,
        amount_paid=order.paid_display,
        card=f"{brand} ending in {order.card_last4}" if order.card_last4 else "",
        statement_descriptor=order.statement_descriptor,
        refunds=tuple(lines),
        amount_refunded=format_money(given_back, order.paid_currency) if given_back else "",
        net_amount=format_money(order.paid_cents - given_back, order.paid_currency),
        period=_receipt_period(order, proved=proved),
    )


def _receipt_period(order: Order, *, proved: bool) -> str:
    """What this payment's period is, as the receipt says it: only what is true of it now."""
    entitlement = Entitlement.objects.filter(order_id=order.id).first()
    if entitlement is None:
        return "" if order.state in (S.REFUNDED, S.REFUND_PENDING) else "Its access has not started yet."
    if entitlement.revoked_at is not None:
        return f"The access it bought was withdrawn on {customer_day(entitlement.revoked_at)}."
    if entitlement.starts_at > order.paid_at and not proved:
        months = order.plan.duration_months
        return f"Adds {months} month{'s' if months != 1 else ''} to the plan of the account for this address."
    return f"Access: {customer_day(entitlement.starts_at)} to {customer_day(entitlement.ends_at)}."


# --- How healthy is the sweep? ---------------------------------------------------------------
# Read from ReconcileRun rows, so anything can ask, including a page when the worker is down.

# The sweep runs every minute; this long without a finished pass means it is not running.
SWEEP_STALE_AFTER_MINUTES = 5
# This many failed passes in a row (with errors, or failed outright) means it is not doing its job.
SWEEP_FAILURES_ALERT = 2


@dataclass(frozen=True)
class SweepHealth:
    healthy: bool
    # Failed passes since the last one that finished cleanly, newest first (ERRORS or FAILED).
    failures: int
    last_ok_id: int | None  # the last clean pass: an outage is everything after it
    last_ok_at: datetime | None
    last_finished_at: datetime | None  # any finished pass, clean or not
    stalled: bool  # no pass finished within SWEEP_STALE_AFTER_MINUTES (or none ever did)
    running_since: datetime | None  # a pass started and not finished, if any
    last_error: str  # the newest failed pass's first error, for support's eyes


def sweep_health(*, now: datetime | None = None) -> SweepHealth:
    """Is the sweep doing its job? Unhealthy when SWEEP_FAILURES_ALERT passes in a row failed, or
    when no pass has finished for SWEEP_STALE_AFTER_MINUTES (stuck, not scheduled, worker down)."""
    Status = ReconcileRun.Status
    now = now or timezone.now()
    finished = ReconcileRun.objects.filter(status__in=[Status.OK, Status.ERRORS, Status.FAILED])
    last_ok = finished.filter(status=Status.OK).order_by("-started_at").values("id", "started_at",
                                                                               "finished_at").first()
    failed = finished.exclude(status=Status.OK)
    if last_ok:
        failed = failed.filter(started_at__gt=last_ok["started_at"])
    newest_failure = failed.order_by("-started_at").values_list("errors", flat=True).first()
    failures = failed.count()
    last_finished_at = finished.order_by("-finished_at").values_list("finished_at", flat=True).first()
    running_since = (ReconcileRun.objects.filter(status=Status.RUNNING).order_by("started_at")
                     .values_list("started_at", flat=True).first())
    stalled = last_finished_at is None or last_finished_at < now - timedelta(minutes=SWEEP_STALE_AFTER_MINUTES)
    return SweepHealth(
        healthy=not stalled and failures < SWEEP_FAILURES_ALERT,
        failures=failures,
        last_ok_id=last_ok["id"] if last_ok else None,
        last_ok_at=last_ok["finished_at"] if last_ok else None,
        last_finished_at=last_finished_at,
        stalled=stalled,
        running_since=running_since,
        last_error=str((newest_failure or [""])[0])[:300],
    )


# --- Figures for monitors (/metrics, /readyz) -------------------------------------------------
# Cheap on purpose: aggregates over indexed columns, a handful of rows back, asked every few seconds.

def orders_by_state() -> dict[str, int]:
    """How many orders are in each state (every state named, zero included)."""
    counts = dict(Order.objects.order_by().values_list("state").annotate(n=Count("id")))
    return {state: counts.get(state, 0) for state in OrderState.values}


def money_held() -> dict:
    """Money Stripe took for which the customer has no service yet (held_since set): how many orders,
    how much per currency (cents, as Stripe received it), and since when the oldest has waited."""
    held = Order.objects.filter(held_since__isnull=False).order_by()
    by_currency = dict(held.annotate(cur=Coalesce(NullIf("received_currency", Value("")), "currency"))
                       .values_list("cur").annotate(cents=Sum(Coalesce("amount_received_cents", "amount_cents"))))
    totals = held.aggregate(count=Count("id"), oldest=Min("held_since"))
    return {"orders": totals["count"], "cents_by_currency": {cur.lower(): cents for cur, cents in by_currency.items()},
            "oldest_since": totals["oldest"]}


def emails_unsent() -> dict:
    """Transactional emails not sent yet and still being tried (waiting, or a send under way): how
    many, and when the oldest was owed. Rows given up on (failed, uncertain) are support's cases, not
    a backlog. The one place monitors read the outbox from: it moves with the outbox's model."""
    unsent = OutboundEmail.objects.filter(status__in=OutboundEmail.STILL_TRYING)
    totals = unsent.order_by().aggregate(count=Count("id"), oldest=Min("created_at"))
    return {"count": totals["count"], "oldest_at": totals["oldest"]}
