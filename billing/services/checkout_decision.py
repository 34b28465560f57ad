"""Checkout's decision: given what the customer submitted and what their browser has shown, what
happens now. The view gathers the request's facts (the form, the session, proof of the address,
the rate limit), calls checkout_decide once, and renders the outcome by its kind."""

import enum
from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from accounts.access import access_until
from accounts.models import normalize_email
from billing.errors import PaymentSetupFailed
from billing.models import Order, OrderState, Plan
from billing.selectors import account_made_by_orders
from billing.services.checkout import PURCHASED, order_create, order_latest_purchase, order_prepare_payment
from billing.services.self_service import order_buyer_details_record

S = OrderState

# Orders a customer may still pay for: nothing taken yet (or, for processing, Stripe decides).
PAYABLE = {S.PENDING, S.FAILED, S.PROCESSING}


class CheckoutOutcomeKind(enum.StrEnum):
    RATE_LIMITED = "rate_limited"  # too many checkouts from this client: nothing made
    RESUME_PAYMENT = "resume_payment"  # this browser's own unpaid order: the same payment, never a second
    OFFER_MORE_TIME = "offer_more_time"  # the proved customer's plan runs: ask before taking more money
    ALREADY_BOUGHT = "already_bought"  # the address has the plan, or a payment for it in progress
    PAY = "pay"  # an order with its payment set up: on to the card form
    SETUP_FAILED = "setup_failed"  # the order is written, but Stripe did not set up its payment


@dataclass(frozen=True)
class CheckoutOutcome:
    """What checkout_decide decided. `order`: the order the page is about (the earlier one, or the
    one just made); `own`: it is one this browser made; `proved`: the browser proved the address
    (or the account is wholly its own doing); `retry_after`: seconds, when rate limited;
    `payment_intent`: the PaymentIntent just set up, for PAY (the pay page then need not ask Stripe)."""

    kind: CheckoutOutcomeKind
    order: Order | None = None
    own: bool = False
    proved: bool = False
    retry_after: int | None = None
    payment_intent: object | None = None


def checkout_decide(*, plan: Plan, email: str, nonce, full_name: str = "", buy_again: bool = False,
                    address_proved: bool = False, own_order_ids: Collection[str] = (), customer=None,
                    browser_key: str = "", retry_after: int | None = None) -> CheckoutOutcome:
    """Decide a submitted checkout, and make the order and its payment when that is the answer.

    `address_proved`: this browser proved it reads `email` (signed in, a Renew or emailed link).
    `own_order_ids`: the public ids (hex) of the orders this browser made. `customer`: the account
    the browser proved, whose company details the receipt prints. `retry_after`: the rate limit's
    answer, counted by the caller (it counts requests, not addresses).

    The address's earlier purchase is looked up first (settling its open orders with Stripe), so a
    customer whose first payment went through is never offered a second card form by mistake.
    """
    if retry_after:
        return CheckoutOutcome(CheckoutOutcomeKind.RATE_LIMITED, retry_after=retry_after)
    email = normalize_email(email)
    latest = order_latest_purchase(email=email, plan=plan)
    # Asked after the lookup above: settling an earlier payment may just have made the account. A
    # browser without orders made no account, so a first checkout does not read it.
    proved = address_proved or (bool(own_order_ids) and account_made_by_orders(_account(email), own_order_ids))
    # "Buy again" is a hidden field anyone can add: it counts only for an address this browser
    # proved, or an account wholly made by its own payments. Having paid with the address in this
    # browser is no proof (anyone can type it): a stranger's payment to Bob's address does not make
    # Bob's account theirs.
    if latest is not None and not (buy_again and proved):
        earlier = latest.order
        own = earlier.public_id.hex in own_order_ids
        # Stripe did not answer about it: possibly paid, so a payment in progress.
        state = S.PROCESSING if latest.unconfirmed else earlier.state
        if state in PAYABLE and own:
            return CheckoutOutcome(CheckoutOutcomeKind.RESUME_PAYMENT, order=earlier, own=True, proved=proved)
        if state in PURCHASED:
            if state != S.ACTIVE or not proved:
                return CheckoutOutcome(CheckoutOutcomeKind.ALREADY_BOUGHT, order=earlier, own=own, proved=proved)
            if customer is None or customer.email != earlier.email:
                # Their plan runs: one more payment adds time after it; say so and ask.
                return CheckoutOutcome(CheckoutOutcomeKind.OFFER_MORE_TIME, order=earlier, own=own, proved=True)
            # A signed-in customer or a Renew link saw the new end date on the form itself.

    account = _account(email) if proved else None
    order = order_create(plan=plan, email=email, full_name=full_name, checkout_nonce=nonce, browser_key=browser_key,
                         renewal=account is not None and access_until(account) is not None)
    # The receipt's company and VAT number: from the account of a customer who proved it, frozen.
    buyer = customer if customer is not None and customer.email == order.email else None
    details = (buyer.company_name, buyer.vat_number) if buyer else ("", "")
    if (order.buyer_company_name, order.buyer_vat_number) != details:  # a new order has none to change
        order = order_buyer_details_record(order=order, company_name=details[0], vat_number=details[1])
    try:
        payment_intent = order_prepare_payment(order=order)
    except PaymentSetupFailed:
        return CheckoutOutcome(CheckoutOutcomeKind.SETUP_FAILED, order=order, own=True, proved=proved)
    return CheckoutOutcome(CheckoutOutcomeKind.PAY, order=order, own=True, proved=proved, payment_intent=payment_intent)


def _account(email: str):
    return get_user_model().objects.filter(email=email).first()
