"""Customer self-service: status links for "Find my order", the "already yours" notice at checkout,
and the buyer details a receipt prints."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import normalize_email
from billing import locks, stripe_api
from billing.models import Order, OrderState, OutboundEmail
from billing.services.outbox import outbound_email_queue
from billing.services.settle import order_settle
from billing.settle_decision import MONEY_IN_FLIGHT, UNFINISHED_PAYMENT

logger = logging.getLogger(__name__)
S = OrderState

STATUS_LINK_MAX_ORDERS = 5
# Anyone can type an address into "Find my order" (or into checkout): at most this many status-link
# emails go to one address in any 24 hours, whoever asked and however many orders it has.
STATUS_LINK_EMAILS_PER_DAY = 5
# Orders worth a status link to whoever types their address: money moved or is moving (a
# PaymentIntent that succeeded or is processing, and what followed: refunds, disputes, review).
# An unpaid, failed or canceled order owes nobody an email; its owner can simply check out again.
# Nor does a bank check left unfinished: settle keeps it pending (an order marked processing
# before it did is settled first, below).
STATUS_LINK_STATES = [S.PROCESSING, S.PAID, S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.DISPUTED, S.NEEDS_REVIEW]


def order_status_links_send(*, email: str, card_last4: str = "") -> int:
    """Email the status link of this address's recent paid orders to that address, and only there.

    Someone other than the customer may have asked, so the email carries only our words (no name
    or other text the customer typed), goes only to orders with money involved, and stops at
    STATUS_LINK_EMAILS_PER_DAY per address. Returns how many were queued, for logs; the page
    shows the same words whatever the count, so the form reveals nothing about who has bought.
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
    with transaction.atomic():
        # Locking the address's orders makes two lookups at once count each other's emails.
        orders = list(orders.select_for_update().order_by("-created_at")[:STATUS_LINK_MAX_ORDERS])
        if not orders:
            return 0
        sent_today = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.STATUS_LINK, recipient=address,
                                                  created_at__gte=timezone.now() - timedelta(days=1)).count()
        orders = orders[:max(0, STATUS_LINK_EMAILS_PER_DAY - sent_today)]
        for order in orders:
            outbound_email_queue(order=order, kind=OutboundEmail.Kind.STATUS_LINK)
    if not orders:
        logger.warning("Status links for %s not sent: %s already sent in the last day", address, sent_today)
    return len(orders)


# A checkout with an address that already has the plan (or a payment in progress) emails that
# address once, whoever typed it, at most this often.
ALREADY_YOURS_EVERY = timedelta(minutes=5)


def order_already_yours_send(*, order: Order) -> bool:
    """Tell the address of `order` that someone started a checkout with it and we charged nothing.

    The person at checkout may not be the customer, so the email goes only to the order's own
    address and carries only our words. One per address per ALREADY_YOURS_EVERY, and together with
    status links at most STATUS_LINK_EMAILS_PER_DAY a day; the address lock makes two checkouts at
    the same moment count each other. Returns whether an email was queued.
    """
    now = timezone.now()
    with transaction.atomic():
        locks.address_lock(order.email)
        sent = OutboundEmail.objects.filter(recipient=order.email, kind__in=[
            OutboundEmail.Kind.ALREADY_YOURS, OutboundEmail.Kind.STATUS_LINK])
        if sent.filter(kind=OutboundEmail.Kind.ALREADY_YOURS, created_at__gte=now - ALREADY_YOURS_EVERY).exists():
            return False
        if sent.filter(created_at__gte=now - timedelta(days=1)).count() >= STATUS_LINK_EMAILS_PER_DAY:
            logger.warning("Checkout notice for %s not sent: the day's emails are used up", order.email)
            return False
        outbound_email_queue(order=order, kind=OutboundEmail.Kind.ALREADY_YOURS)
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
