"""Customer self-service: status links for "Find my order", the "already yours" notice at checkout,
and the buyer details a receipt prints."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import normalize_email
from billing import locks, stripe_api
from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderState
from billing.services.settle import order_settle
from billing.settle_decision import MONEY_IN_FLIGHT, UNFINISHED_PAYMENT
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue

logger = logging.getLogger(__name__)
S = OrderState

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
        outbound_email_queue(about=orders[0], kind=EmailKind.STATUS_LINK,
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
        sent = OutboundEmail.objects.filter(recipient=order.email, kind=EmailKind.ALREADY_YOURS)
        if sent.filter(created_at__gte=now - ALREADY_YOURS_EVERY).exists():
            return False
        if sent.filter(created_at__gte=now - timedelta(days=1)).count() >= ALREADY_YOURS_PER_DAY:
            logger.warning("Checkout notice for %s not sent: the day's emails are used up", order.email)
            return False
        outbound_email_queue(about=order, kind=EmailKind.ALREADY_YOURS)
    return True


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
