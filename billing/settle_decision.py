"""What settle decides, without the database: Stripe's facts about a payment and the order's facts in,
the moves that bring the order in line with Stripe out (billing/services/settle.py applies them
under the order's lock).

Plain data and plain functions, importable without Django, so the rules can be read in one place and
checked over every combination of facts (tests/billing/test_settle_decision.py). States are the
values of billing.models.OrderState, as plain strings.
"""

from dataclasses import dataclass, replace

from billing.money import format_money

PENDING, PROCESSING, FAILED, PAID, ACTIVE = "pending", "processing", "failed", "paid", "active"
CANCELED, REFUND_PENDING, REFUNDED = "canceled", "refund_pending", "refunded"
DISPUTED, NEEDS_REVIEW = "disputed", "needs_review"
STATES = (PENDING, PROCESSING, FAILED, PAID, ACTIVE, CANCELED, REFUND_PENDING, REFUNDED, DISPUTED, NEEDS_REVIEW)

# Stripe statuses in which money is taken or on its way (a bank debit, an authorised card).
MONEY_IN_FLIGHT = ("processing", "requires_capture")
# Stripe statuses in which nothing was taken and the customer still has to act: the bank's check
# (3-D Secure), a card, a confirmation. The sweep cancels these after ABANDONED_PAYMENT_AFTER.
UNFINISHED_PAYMENT = ("requires_action", "requires_payment_method", "requires_confirmation")

# Orders with no money taken yet, as far as we knew.
UNPAID = (PENDING, PROCESSING, FAILED)
# Moving to these ends money held without service (billing/services/history.py `_move`).
HOLDING_ENDS = (ACTIVE, REFUND_PENDING, REFUNDED, CANCELED)


@dataclass(frozen=True)
class StripePayment:
    """What Stripe says about the order's PaymentIntent and its latest charge."""

    belongs: bool  # the PaymentIntent carries this order's reference (settle.py `_belongs_to`)
    status: str
    amount_received: int = 0
    currency: str = "usd"
    charge_seen: bool = False  # the latest charge came with the PaymentIntent (expanded)
    amount_refunded: int = 0  # on that charge
    refunded: bool = False  # the charge's own "fully refunded" flag
    disputed: bool = False
    payment_error: str | None = None  # last_payment_error's message ("" for one without); None: no error
    cancellation_reason: str = ""


@dataclass(frozen=True)
class OrderNow:
    """The order's facts that settle decides from, read under its lock."""

    state: str
    amount_cents: int
    currency: str
    amount_refunded_cents: int = 0
    held: bool = False  # money held without service already (held_since set)


# The moves. Reasons are the timeline's words; settle adds the caller's "(reason)", actor and ids.


@dataclass(frozen=True)
class ChangeState:
    to_state: str
    because: str
    attention: str = ""  # what the order's attention_reason becomes, if anything


@dataclass(frozen=True)
class RecordRefunded:
    """Stripe shows a different total refunded: keep it on the order, say so on the timeline."""

    total_cents: int
    because: str


@dataclass(frozen=True)
class Activate:
    """Grant the time the payment bought (one entitlement), move to active, owe the confirmation."""


@dataclass(frozen=True)
class Revoke:
    """Take back the time the order bought."""

    why: str


@dataclass(frozen=True)
class OweRefundEmail:
    """Owe the customer one refund email, saying `default_reason` unless the order has a reason."""

    default_reason: str


@dataclass(frozen=True)
class AlertDispute:
    """Put the disputed payment in front of a person."""


@dataclass(frozen=True)
class AlertRefundSentBack:
    """Stripe shows less refunded than we recorded: the customer's bank sent a refund back (a closed
    or replaced card), so Stripe holds that money again and the customer does not have it. A person
    returns it another way; the held-money path would promise access and refund to the same card."""

    sent_back_cents: int
    total_cents: int  # Stripe's total refunded now: one alert per total


@dataclass(frozen=True)
class HoldMoney:
    """Hold the money openly: the refund deadline, the customer's email, the team's alert."""


Move = (ChangeState | RecordRefunded | Activate | Revoke | OweRefundEmail | AlertDispute | AlertRefundSentBack
        | HoldMoney)


def order_after(order: OrderNow, moves) -> OrderNow:
    """The order's facts once these moves are applied."""
    for move in moves:
        if isinstance(move, ChangeState | Activate):
            to_state = move.to_state if isinstance(move, ChangeState) else ACTIVE
            order = replace(order, state=to_state, held=order.held and to_state not in HOLDING_ENDS)
        elif isinstance(move, RecordRefunded):
            order = replace(order, amount_refunded_cents=move.total_cents)
        elif isinstance(move, HoldMoney):
            order = replace(order, held=True)
    return order


def decide(payment: StripePayment, order: OrderNow) -> list[Move]:
    """The moves that bring `order` in line with `payment`, in the order settle applies them."""
    if order.state == REFUNDED:
        # Final (billing/states.py): whatever Stripe says later, the order only records it.
        return _refund_total(payment, order) if payment.belongs and payment.status == "succeeded" else []
    if not payment.belongs:
        moves = _not_this_orders(order)
    elif payment.status == "succeeded":
        moves = _succeeded(payment, order)
    elif payment.status in MONEY_IN_FLIGHT:
        moves = _in_flight(payment, order)
    elif payment.status in UNFINISHED_PAYMENT:
        moves = _unfinished(payment, order)
    elif payment.status == "canceled" and order.state in UNPAID:
        reason = payment.cancellation_reason or "no reason"
        moves = [ChangeState(CANCELED, f"Stripe canceled the payment ({reason})")]
    else:
        moves = []
    moves += _not_paid_after_all(payment, order_after(order, moves))
    moves += _hold_if_money_without_service(payment, order_after(order, moves))
    return moves


def fully_refunded(payment: StripePayment) -> bool:
    """Stripe shows this order's payment given back in full."""
    return payment.belongs and payment.status == "succeeded" and payment.charge_seen and (
        payment.refunded or payment.amount_refunded >= payment.amount_received)


def _not_this_orders(order: OrderNow) -> list[Move]:
    if order.state == NEEDS_REVIEW:
        return []
    attention = "Stripe payment does not carry this order's reference"
    return [ChangeState(NEEDS_REVIEW, attention, attention=attention)]


def _refund_total(payment: StripePayment, order: OrderNow) -> list[Move]:
    """Stripe's total refunded on the order, and a person told when it fell: refunds only ever add
    up, unless the customer's bank sends one back."""
    if not payment.charge_seen or payment.amount_refunded == order.amount_refunded_cents:
        return []
    because = f"Stripe shows {format_money(payment.amount_refunded, payment.currency)} refunded in total"
    sent_back = order.amount_refunded_cents - payment.amount_refunded
    if sent_back <= 0:
        return [RecordRefunded(payment.amount_refunded, because)]
    because += f": the customer's bank sent back {format_money(sent_back, payment.currency)}"
    return [RecordRefunded(payment.amount_refunded, because), AlertRefundSentBack(sent_back, payment.amount_refunded)]


def _succeeded(payment: StripePayment, order: OrderNow) -> list[Move]:
    moves: list[Move] = _refund_total(payment, order)
    if fully_refunded(payment):
        if order.state in UNPAID:
            moves.append(ChangeState(PAID, "Stripe confirmed the payment"))
        moves += [ChangeState(REFUNDED, "Stripe shows the payment fully refunded"), Revoke("refunded"),
                  OweRefundEmail("Our team issued this refund.")]
    elif (payment.amount_received, payment.currency) != (order.amount_cents, order.currency):
        if order.state != NEEDS_REVIEW:
            attention = (f"Stripe received {format_money(payment.amount_received, payment.currency)}, "
                         f"the order expects {format_money(order.amount_cents, order.currency)}")
            moves.append(ChangeState(NEEDS_REVIEW, attention, attention=attention))
    elif order.state in UNPAID:
        moves += [ChangeState(PAID, "Stripe confirmed the payment"), Activate()]
    elif order.state == PAID:
        moves.append(Activate())
    elif order.state == CANCELED:
        attention = "A payment arrived for an order that had been canceled"
        moves.append(ChangeState(NEEDS_REVIEW, attention, attention=attention))
    # A dispute freezes nothing for the customer yet; it puts the order in front of a person.
    if payment.charge_seen and payment.disputed and order_after(order, moves).state in (PAID, ACTIVE):
        moves += [ChangeState(DISPUTED, "The customer's bank opened a dispute on the payment"), AlertDispute()]
    return moves


def _in_flight(payment: StripePayment, order: OrderNow) -> list[Move]:
    if order.state not in (PENDING, FAILED):
        return []
    return [ChangeState(PROCESSING, f"Stripe reports the payment as {payment.status.replace('_', ' ')}")]


def _unfinished(payment: StripePayment, order: OrderNow) -> list[Move]:
    """Nothing was taken: the customer still has to act (the bank's check, a card), so the order is
    unpaid, never "processing" (docs/reconcile.md#abandoned-payment-attempts)."""
    error = payment.payment_error
    if error is not None and payment.status != "requires_action" and order.state in (PENDING, PROCESSING):
        attention = (error or "The card was declined")[:500]
        return [ChangeState(FAILED, f"Payment attempt failed: {attention}", attention=attention)]
    if payment.status == "requires_action" and order.state in (PROCESSING, FAILED):
        return [ChangeState(PENDING, "The bank asked the customer to confirm the payment; nothing was taken")]
    if error is None and order.state in (PROCESSING, FAILED):
        return [ChangeState(PENDING, "Waiting for the customer to pay")]
    return []


def _not_paid_after_all(payment: StripePayment, order: OrderNow) -> list[Move]:
    if order.state not in (PAID, ACTIVE) or payment.status == "succeeded":
        return []
    attention = f"Order is {order.state} but Stripe says {payment.status}"
    return [ChangeState(NEEDS_REVIEW, attention, attention=attention)]


def _hold_if_money_without_service(payment: StripePayment, order: OrderNow) -> list[Move]:
    """Money held without service: tell the customer now, before they have to ask, and start the
    clock after which they are refunded without asking."""
    held = order.state == NEEDS_REVIEW and payment.status == "succeeded" and not fully_refunded(payment)
    return [HoldMoney()] if held and not order.held else []
