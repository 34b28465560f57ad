"""An order's money as support reads it (order_money: one label for the case header, the search
results, the queue and the diagnosis) and Stripe's facts about its payment (order_payment_intent,
stripe_payment)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from djstripe import models as djstripe_models

from billing import stripe_api
from billing.models import Order
from billing.money import format_money
from support.selectors.common import NOT_ASKED, OPEN_STATES, UNKNOWN, S


@dataclass(frozen=True)
class Money:
    """What support reads about an order's money: one answer for the case header, the search
    results, the queue and the diagnosis, so none of them calls a charged customer unpaid."""

    amount: str  # Stripe's amount once it took money, else the price asked (both where they differ)
    charged_at: datetime | str | None  # when Stripe took it; UNKNOWN if Stripe could not be asked
    label: str  # e.g. "Charged $249.00, not yet active"
    state: str  # the order's state as support should read it, e.g. "Charged, not finished"


def order_money(order: Order, *, ask_stripe: bool = True, payment_intent=None) -> Money:
    """Label the order's money from the facts the diagnosis reads: what settle recorded, else the
    mirror's succeeded charge, else Stripe's PaymentIntent (a read; `ask_stripe=False` skips it and
    says so). `payment_intent`, when the caller already read it, saves the call."""
    asked = order.amount_display
    amount = order.paid_display if order.amount_received_cents is not None else asked
    if order.amounts_differ:
        amount += f" (the order asked {asked})"
    if order.paid_at is not None:
        charged_at = order.paid_at
    elif ask_stripe or payment_intent is not None:
        charged_at = _charged_at(order, payment_intent=payment_intent)
    else:
        charged_at = _charged_at(order, payment_intent=NOT_ASKED)
    state = order.get_state_display()
    unchecked = charged_at == NOT_ASKED
    if unchecked:
        charged_at = None  # our records and the mirror show no charge
    if order.state in OPEN_STATES and unchecked and _recent(order):
        # The mirror may not have a charge made minutes ago: say what was not checked.
        label = f"{amount}, not checked with Stripe here (open the case)"
    elif order.state in OPEN_STATES and charged_at == UNKNOWN:
        label, state = f"{amount}, maybe charged: Stripe could not be reached", "Not known yet"
    elif order.state in OPEN_STATES and charged_at is not None:
        if order.amount_received_cents is None:
            amount = amount.replace(asked, _stripe_amount(order, payment_intent) or asked, 1)
        label, state = f"Charged {amount}, not yet active", "Charged, not finished"
    elif order.state == S.PROCESSING:
        label = f"{amount} in progress at Stripe, not yet charged"
    elif order.state in (S.PENDING, S.FAILED, S.CANCELED):
        label = f"Not charged ({amount} asked)"
    elif order.state == S.ACTIVE:
        refunded = f", {order.refunded_display} refunded" if order.amount_refunded_cents else ""
        label = f"Paid {amount}{refunded}, active"
    elif order.state == S.NEEDS_REVIEW and order.amount_received_cents is not None:
        label = f"Charged {amount}, held: not active"
    elif order.state == S.NEEDS_REVIEW:
        label = f"{amount}, needs review: check the payment in Stripe"
    elif order.state == S.REFUND_PENDING:
        label = f"Charged {amount}, refund in progress"
    elif order.state == S.REFUNDED:
        label = f"Refunded {order.refunded_display} of {order.paid_display}"
    else:  # disputed
        label = f"Charged {amount}, disputed by the bank"
    if getattr(order, "renewal", False) and order.state not in (S.PENDING, S.FAILED, S.CANCELED):
        label = f"Renewal: {label}"
    return Money(amount, charged_at, label, state)


def _recent(order: Order) -> bool:
    """Young enough that Stripe may know of a payment the mirror and the sweep have not seen yet."""
    return order.created_at >= timezone.now() - timedelta(days=OPEN_PAYMENT_LOOKBACK_DAYS)


def _stripe_amount(order: Order, payment_intent=None) -> str:
    """What Stripe took for an order settle has not recorded yet: the mirror's charge, or the
    PaymentIntent read a moment ago."""
    charge = (djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id,
                                                    status="succeeded").order_by("-created").first())
    if charge is not None:
        data = charge.stripe_data or {}
        return format_money(data.get("amount", 0), data.get("currency", order.currency))
    if payment_intent is not None and payment_intent not in (NOT_ASKED, UNKNOWN):
        return format_money(payment_intent.amount_received, payment_intent.currency)
    return ""


@dataclass(frozen=True)
class StripePayment:
    """What Stripe says of an order's PaymentIntent, as the diagnosis reads it."""

    status: str | None  # Stripe's status; None: the order has no PaymentIntent; UNKNOWN: not reached
    error: str = ""  # the last attempt's error message, if Stripe reports one
    received: int | None = None  # amount_received, once succeeded
    currency: str = ""
    refunded: int = 0
    disputed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def fully_refunded(self) -> bool:
        return self.succeeded and bool(self.received) and self.refunded >= self.received

    def money(self) -> str:
        return format_money(self.received or 0, self.currency or "usd")


def order_payment_intent(order: Order):
    """The order's PaymentIntent as Stripe has it now (with its latest charge), None if the order
    has none, UNKNOWN if Stripe cannot be reached. A read: the case page asks once and hands it on."""
    if not order.stripe_payment_intent_id:
        return None
    try:
        return stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    except stripe_api.StripeError:
        return UNKNOWN


@dataclass(frozen=True)
class _Recorded:
    """Stripe's facts as settle last recorded them on the order (when Stripe cannot be reached)."""

    payment: StripePayment


def stripe_payment(payment_intent) -> StripePayment:
    if isinstance(payment_intent, _Recorded):
        return payment_intent.payment
    if payment_intent is None or payment_intent == UNKNOWN:
        return StripePayment(payment_intent)
    error = payment_intent.get("last_payment_error")
    charge = payment_intent.get("latest_charge")
    charge = charge if charge and not isinstance(charge, str) else {}
    succeeded = payment_intent.status == "succeeded"
    return StripePayment(payment_intent.status, (error.get("message") or "declined") if error else "",
                         payment_intent.get("amount_received") if succeeded else None, payment_intent.currency,
                         charge.get("amount_refunded") or 0, bool(charge.get("disputed")))




def _charged_at(order: Order, *, payment_intent=None) -> datetime | str | None:
    """When Stripe took the money for an order we have not finished: the mirror, else Stripe.

    A case page must not say "no payment" because a webhook was lost; for an open order with a
    PaymentIntent it asks Stripe (a read; Recover is what acts on it), unless the caller passes the
    PaymentIntent it read, or NOT_ASKED to read only the mirror.
    """
    if not order.stripe_payment_intent_id or order.state not in OPEN_STATES:
        return None
    charge = (djstripe_models.Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id,
                                                    status="succeeded").order_by("-created").first())
    if charge is not None:
        return charge.created
    if payment_intent in (NOT_ASKED, UNKNOWN):
        return payment_intent
    try:
        pi = payment_intent or stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
    except stripe_api.StripeError:
        return UNKNOWN
    latest = pi.get("latest_charge")
    if pi.status == "succeeded" and latest and not isinstance(latest, str):
        return datetime.fromtimestamp(latest.created, tz=UTC)
    return None
# The card of a payment nothing has told us about yet (no webhook, no return, no sweep): a last-4
# search asks Stripe about the open orders this recent.
OPEN_PAYMENT_LOOKBACK_DAYS = 2
