"""The facts of a paid (or held) order that the diagnosis and the drafts lean on: another payment
for the same plan, the confirmation email as the outbox records it, how long activation took, what a
refund would do to access, and what Recover leaves for a person."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderEvent
from billing.selectors import access_until_without, order_access
from billing.services import UNFINISHED_PAYMENT, abandoned_payment_after_words
from outbox.models import OutboundEmail
from support.selectors.common import DUPLICATE_PAYMENT_WINDOW_MINUTES, NETS_HEAD_START_MINUTES, S, _when
from support.timefmt import console_date


def order_other_payments(order: Order) -> list[Order]:
    """The customer's other paid orders for the same plan made within DUPLICATE_PAYMENT_WINDOW_MINUTES
    of this one, oldest first, when neither was a renewal checkout offered (Order.renewal). Since
    decision 0011 a second paid year stacks after the first: a real purchase, and still one a person
    should see, since customers often did not mean it."""
    if order.state not in (S.PAID, S.ACTIVE) or order.renewal:
        return []
    window = timedelta(minutes=DUPLICATE_PAYMENT_WINDOW_MINUTES)
    return list(Order.objects.filter(email=order.email, plan_id=order.plan_id, state__in=[S.PAID, S.ACTIVE],
                                     renewal=False, created_at__gte=order.created_at - window,
                                     created_at__lte=order.created_at + window)
                .exclude(pk=order.pk).select_related("plan").order_by("created_at"))


def _two_payments(order: Order, others: list[Order]) -> str:
    orders = sorted([order, *others], key=lambda o: o.created_at)
    listed = ", ".join(f"{o.reference} ({o.paid_display}, {_when(o.paid_at)})" for o in orders[:-1])
    listed += f" and {orders[-1].reference} ({orders[-1].paid_display}, {_when(orders[-1].paid_at)})"
    latest = order_access(orders[-1])
    months = orders[-1].plan.duration_months
    added = (f"the second added {months} months" if len(orders) == 2
             else f"each after the first added {months} months")
    to = f", to {console_date(latest.ends_at)}" if latest.granted and latest.in_force else " once active"
    return f"This customer has {len(orders)} paid orders for the {order.plan.name} plan: {listed}; {added}{to}."


@dataclass(frozen=True)
class _ConfirmationFacts:
    line: str  # what the timeline says of the confirmation email, for support
    trouble: str  # why it may not have reached the customer, if so
    reply: str  # the reply key these facts back: resent | confirmation_sent | active
    sent_at: datetime | None = None
    resent_at: datetime | None = None
    on_its_way: bool = False  # queued or being sent right now


def _confirmation_facts(order: Order) -> _ConfirmationFacts:
    """The confirmation email as the outbox records it: sent (when), sent again after a resend,
    on its way, or in trouble. A reply says "sent" only on a sent row, "sent again" only after a
    resend recorded on the timeline and sent after it."""
    email = order.emails.filter(kind=EmailKind.CONFIRMATION).first()
    if email is None:
        return _ConfirmationFacts("No confirmation email is recorded.", "", "active")
    if email.status in (OutboundEmail.Status.FAILED, OutboundEmail.Status.UNCERTAIN) or email.esp_status in (
            "bounced", "rejected", "failed", "complained"):
        state = email.esp_status or email.get_status_display().lower()
        return _ConfirmationFacts("", f"The confirmation to {email.recipient} did not arrive ({state}).", "active")
    if email.status != OutboundEmail.Status.SENT or email.sent_at is None:
        return _ConfirmationFacts(f"The confirmation to {email.recipient} is waiting to send.", "", "active",
                                  on_its_way=True)
    resend = (order.events.filter(kind=OrderEvent.Kind.RESEND_ASKED,
                                  data__email_kind=EmailKind.CONFIRMATION)
              .order_by("-created_at").values_list("created_at", flat=True).first())
    if resend is not None and email.sent_at >= resend:
        return _ConfirmationFacts(f"The confirmation was sent again to {email.recipient} at {_when(email.sent_at)}.",
                                  "", "resent", email.sent_at, email.sent_at)
    return _ConfirmationFacts(f"The confirmation was sent to {email.recipient} at {_when(email.sent_at)}.", "",
                              "confirmation_sent", email.sent_at)


def refund_effect(order: Order, *, full: bool) -> str:
    """What a refund would do to the customer's access, in the words support reads before pressing."""
    if not full:
        return ("A partial refund: the customer keeps their access. If you change the amount, you'll be asked "
                "to confirm the new one.")
    if not order_access(order).in_force:
        return ("A full refund: this order gives no access now, so no access changes; the customer gets one "
                "email saying why.")
    remains = access_until_without(order)
    if remains:
        return (f"A full refund takes back only the time this payment bought: the customer keeps access until "
                f"{console_date(remains)} from their other payments, and gets one email saying why.")
    return "A full refund: the customer's access ends at once, and they get one email saying why."


def _activation_wait(order: Order):
    """How long the customer waited for their account after paying, when it was longer than the
    nets' head start (not activated at checkout); else None."""
    activated = order.events.filter(to_state=S.ACTIVE).order_by("created_at").values_list("created_at",
                                                                                          flat=True).first()
    wait = activated - order.paid_at if activated and order.paid_at else None
    return wait if wait and wait > timedelta(minutes=NETS_HEAD_START_MINUTES) else None


# --- Recover, when it cannot finish -------------------------------------------------------------

def order_acceptable(order: Order) -> bool:
    """Held for review because Stripe took another amount than the order asked, nothing refunded:
    support may Accept what Stripe took (billing.services.order_accept_amount) instead of refunding."""
    return order.state == S.NEEDS_REVIEW and order.amounts_differ and not order.amount_refunded_cents


def recover_outcome(order: Order) -> tuple[bool, str]:
    """What support reads after pressing Recover: (finished, words). An order still held for review
    says why it cannot finish and what to do, from its attention reason and deadline."""
    if order.state in (S.PENDING, S.FAILED) and order.payment_status in UNFINISHED_PAYMENT:
        # Recover has nothing to finish: the customer has not paid. Say so, and what ends it.
        waiting = ("the customer's bank asked them to confirm and they have not"
                   if order.payment_status == "requires_action" else "no card has gone through")
        return False, (f"{order.reference}: {order.get_state_display()}. Stripe took nothing: {waiting}. The "
                       "customer can finish from their status page; Cancel payment attempt ends it now, and the "
                       f"sweep cancels it on its own after {abandoned_payment_after_words()}.")
    if order.state != S.NEEDS_REVIEW:
        return True, f"{order.reference}: {order.get_state_display()}"
    why = order.attention_reason or "the timeline shows why"
    held = ""
    if order.held_since and order.refund_deadline_at:
        held = (f" The customer's {order.paid_display} is held and is refunded automatically at "
                f"{_when(order.refund_deadline_at)} unless the order is finished first.")
    if order_acceptable(order):
        todo = "Recover cannot fix an amount Stripe took differently: Accept what Stripe took, or Refund."
    elif order.amount_received_cents is not None:
        todo = "Check the payment in Stripe's dashboard, then Refund the customer."
    else:
        todo = "Check the payment in Stripe's dashboard before telling the customer anything."
    return False, f"{order.reference} still needs review. Recover cannot finish it: {why}.{held} {todo}"
