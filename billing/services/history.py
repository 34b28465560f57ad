"""The order's state machine and history, one small function per kind of event (as Saleor's
order/events.py). Each writes the row's kind, its facts as data (amounts in cents with currency,
days, ISO dates, email kinds) and the sentence of record; code reads kind and data, never the sentence.

Every OrderEvent is written here. State changes go through `_move`, which refuses transitions
billing/states.py does not list and returns the unsaved event the caller saves with the order;
the other functions save their row at once unless they say otherwise. `user` is the staff member
who acted (actor_user); `actor` names everyone else: checkout, webhook, sweep, customer, system.
"""

from django.utils import timezone

from billing import signals
from billing.errors import InvalidTransition
from billing.models import Order, OrderEvent, OrderState
from billing.money import format_money
from billing.states import can_transition

S = OrderState
K = OrderEvent.Kind


def _event(order: Order, kind: str, *, actor: str, reason: str, data=None, user=None, to_state: str = "",
           from_state: str = "", stripe_ids=None) -> OrderEvent:
    return OrderEvent(order=order, kind=kind, actor=actor[:120], actor_user=user, from_state=from_state,
                      to_state=to_state, reason=reason[:500], data=data or {}, stripe_ids=stripe_ids or {})


def _move(order: Order, to_state: str, *, kind: str = K.STATE_CHANGED, actor: str, reason: str, data=None,
          user=None, stripe_ids=None) -> OrderEvent:
    """Change the order's state in memory and return the event; the caller saves both."""
    if not can_transition(order.state, to_state):
        raise InvalidTransition(order, to_state)
    event = _event(order, kind, actor=actor, reason=reason, data=data, user=user, from_state=order.state,
                   to_state=to_state, stripe_ids=stripe_ids)
    order.state = to_state
    order.state_changed_at = timezone.now()
    if order.held_since is not None and to_state in (S.ACTIVE, S.REFUND_PENDING, S.REFUNDED, S.CANCELED):
        order.held_since = order.refund_deadline_at = None
        signals.attention_over.send(sender=Order, order=order, kinds=["held_money"])
    return event


def _record(order: Order, kind: str, *, actor: str, reason: str, data=None, user=None, to_state: str = "",
            stripe_ids=None) -> OrderEvent:
    event = _event(order, kind, actor=actor, reason=reason, data=data, user=user, to_state=to_state,
                   stripe_ids=stripe_ids)
    event.save()
    return event


def _money(amount_cents: int, currency: str) -> dict:
    return {"amount_cents": amount_cents, "currency": currency}


def _day(moment) -> str:
    return f"{moment:%Y-%m-%d}"


# --- The order and its payment --------------------------------------------------------------------

def event_order_created(order: Order, *, actor: str, renewal: bool) -> OrderEvent:
    created = "Renewal order created" if renewal else "Order created"
    return _record(order, K.CREATED, actor=actor, to_state=S.PENDING,
                   reason=f"{created} for {order.amount_display}",
                   data={**_money(order.amount_cents, order.currency), "renewal": renewal})


def event_order_recreated(order: Order, *, actor: str, payment_intent_id: str) -> OrderEvent:
    money = format_money(order.amount_cents, order.currency)
    return _record(order, K.RECREATED, actor=actor, to_state=S.PENDING,
                   stripe_ids={"payment_intent": payment_intent_id},
                   data=_money(order.amount_cents, order.currency),
                   reason=(f"Order recreated from Stripe's records: Stripe holds {money} for {order.reference} "
                           "but our database had no such order"))


def event_payment_set_up(order: Order, *, actor: str, customer_id: str, payment_intent_id: str) -> OrderEvent:
    # An address's first order has no Stripe Customer (decision 0034): no empty id is recorded.
    customer = {"customer": customer_id} if customer_id else {}
    return _record(order, K.PAYMENT_SET_UP, actor=actor, reason="Payment set up with Stripe",
                   stripe_ids={**customer, "payment_intent": payment_intent_id})


def event_payment_linked(order: Order, *, actor: str, payment_intent_id: str) -> OrderEvent:
    return _record(order, K.PAYMENT_LINKED, actor=actor, reason="Linked to its Stripe payment, found by the sweep",
                   stripe_ids={"payment_intent": payment_intent_id})


def event_state_changed(order: Order, to_state: str, *, actor: str, reason: str, user=None,
                        stripe_ids=None) -> OrderEvent:
    """A move Stripe's facts decided (settle) or review asked for; unsaved."""
    return _move(order, to_state, actor=actor, reason=reason, user=user, stripe_ids=stripe_ids)


def event_payment_canceled(order: Order, *, actor: str, reason: str, user=None, stripe_ids=None) -> OrderEvent:
    """The order canceled with nothing charged; unsaved."""
    return _move(order, S.CANCELED, kind=K.PAYMENT_CANCELED, actor=actor, reason=reason, user=user,
                 stripe_ids=stripe_ids)


def event_access_granted(order: Order, *, actor: str, starts_at, ends_at, why: str = "",
                         stripe_ids=None) -> OrderEvent:
    """The order becomes active with the time it bought; unsaved. `stacked`: after time already paid for."""
    stacked = starts_at != order.paid_at
    granted = (f"Access granted until {_day(ends_at)}" if not stacked else
               f"Access granted from {_day(starts_at)} (after the plan already paid for) until {_day(ends_at)}")
    return _move(order, S.ACTIVE, kind=K.ACCESS_GRANTED, actor=actor, reason=granted + why, stripe_ids=stripe_ids,
                 data={"starts_on": _day(starts_at), "ends_on": _day(ends_at), "stacked": stacked})


def event_money_held(order: Order, *, actor: str, refund_deadline_at, stripe_ids=None) -> OrderEvent:
    """Stripe has the money and the order could not be finished; unsaved."""
    deadline = f"{timezone.localtime(refund_deadline_at):%Y-%m-%d %H:%M %Z}"
    return _event(order, K.MONEY_HELD, actor=actor, stripe_ids=stripe_ids,
                  data={"refund_at": refund_deadline_at.isoformat()},
                  reason=(f"Money held without service: customer told, automatic refund at {deadline} "
                          f"unless the order is finished first"))


def event_accepted_amount(order: Order, *, actor: str, reason: str, asked_cents: int, asked_currency: str,
                          user=None, stripe_ids=None) -> OrderEvent:
    """Support accepted what Stripe took (the order's amount is already Stripe's); unsaved."""
    taken = format_money(order.amount_cents, order.currency)
    asked = format_money(asked_cents, asked_currency)
    return _move(order, S.PAID, kind=K.ACCEPTED_AMOUNT, actor=actor, user=user, stripe_ids=stripe_ids,
                 reason=f"Accepted {taken} as Stripe took it for the {asked} order: {reason.strip()}",
                 data={**_money(order.amount_cents, order.currency), "asked_cents": asked_cents,
                       "asked_currency": asked_currency, "note": reason.strip()})


# --- Refunds ------------------------------------------------------------------------------------

def event_refund_requested(order: Order, *, actor: str, amount_cents: int, currency: str, reason: str,
                           full: bool, user=None, stripe_ids=None) -> OrderEvent:
    """A full refund moves the order to refund_pending (unsaved, the caller saves it with the order);
    a partial one only records the request (saved)."""
    money = format_money(amount_cents, currency)
    data = {**_money(amount_cents, currency), "full": full, "note": reason}
    if full:
        return _move(order, S.REFUND_PENDING, kind=K.REFUND_REQUESTED, actor=actor, user=user, data=data,
                     reason=f"Refund of {money} requested: {reason}", stripe_ids=stripe_ids)
    return _record(order, K.REFUND_REQUESTED, actor=actor, user=user, data=data,
                   reason=f"Partial refund of {money} requested: {reason}", stripe_ids=stripe_ids)


def event_refund_failed(order: Order, *, actor: str, amount_cents: int, currency: str, error: str, user=None,
                        stripe_ids=None) -> OrderEvent:
    money = format_money(amount_cents, currency)
    return _record(order, K.REFUND_FAILED, actor=actor, user=user, stripe_ids=stripe_ids,
                   data={**_money(amount_cents, currency), "error": error[:300]},
                   reason=f"Stripe did not confirm the refund of {money}: {error}")


def event_refund_accepted(order: Order, *, actor: str, amount_cents: int, currency: str, status: str, user=None,
                          stripe_ids=None) -> OrderEvent:
    money = format_money(amount_cents, currency)
    return _record(order, K.REFUND_ACCEPTED, actor=actor, user=user, stripe_ids=stripe_ids,
                   data={**_money(amount_cents, currency), "status": status},
                   reason=f"Stripe accepted the refund of {money} ({status})")


def event_refund_recorded(order: Order, *, actor: str, total_cents: int, currency: str, reason: str,
                          sent_back_cents: int = 0, stripe_ids=None) -> OrderEvent:
    """Stripe shows this much refunded in total (settle), `sent_back_cents` less than before when
    the customer's bank sent a refund back; unsaved."""
    return _event(order, K.REFUND_RECORDED, actor=actor, reason=reason, stripe_ids=stripe_ids,
                  data={"refunded_cents": total_cents, "currency": currency, "sent_back_cents": sent_back_cents})


def event_returned_another_way(order: Order, *, actor: str, user, amount_cents: int, how: str) -> OrderEvent:
    """A person returned a refund the bank sent back, outside Stripe; unsaved."""
    money = format_money(amount_cents, order.paid_currency)
    return _event(order, K.RETURNED_ANOTHER_WAY, actor=actor, user=user,
                  reason=f"Returned {money} to the customer another way: {how.strip()}",
                  data={**_money(amount_cents, order.paid_currency), "how": how.strip()})


# --- Time -----------------------------------------------------------------------------------------

def event_time_moved(order: Order, *, starts_at, ends_at, why: str) -> OrderEvent:
    return _record(order, K.TIME_MOVED, actor="system",
                   data={"starts_on": _day(starts_at), "ends_on": _day(ends_at), "why": why},
                   reason=f"Time moved {why}: now {_day(starts_at)} to {_day(ends_at)}")


def event_access_extended(order: Order, *, actor: str, days: int, ends_at, ends_before, reason: str,
                          user=None) -> OrderEvent:
    was = f"was {_day(ends_before)}" if ends_before else "it had run out"
    return _record(order, K.ACCESS_EXTENDED, actor=actor, user=user,
                   data={"days": days, "ends_on": _day(ends_at),
                         "ended_on": _day(ends_before) if ends_before else None, "note": reason.strip()},
                   reason=f"Access extended by {days} days: paid time now ends {_day(ends_at)} ({was}): "
                          f"{reason.strip()}")


# --- Email ----------------------------------------------------------------------------------------

def _email_data(email) -> dict:
    return {"email_kind": email.kind, "recipient": email.recipient}


def event_email_sent(email) -> OrderEvent:
    return _record(email.about, K.EMAIL_SENT, actor="system", data=_email_data(email),
                   reason=f"Email sent: {email.get_kind_display()} to {email.recipient}")


def event_email_bounced(email, *, event_type: str, description: str = "") -> OrderEvent:
    return _record(email.about, K.EMAIL_BOUNCED, actor="system",
                   data={**_email_data(email), "event_type": event_type, "description": description[:300]},
                   reason=f"Email {event_type}: {email.get_kind_display()} to {email.recipient} {description}".strip())


def event_email_already_sent(email, *, stamp: str) -> OrderEvent:
    return _record(email.about, K.EMAIL_ALREADY_SENT, actor="system", data={**_email_data(email), "sent_on": stamp},
                   reason=(f"{email.get_kind_display()} already sent on {stamp} by Stripe's record "
                           "of it; not sent again (our database was restored from before)"))


def event_resend_asked(email, *, actor: str, user) -> OrderEvent:
    return _record(email.about, K.RESEND_ASKED, actor=actor, user=user, data=_email_data(email),
                   reason=f"Asked to resend: {email.get_kind_display()} to {email.recipient}")


def event_signin_link_sent(order: Order, *, actor: str, user, recipient: str, reason: str) -> OrderEvent:
    return _record(order, K.SIGNIN_LINK_SENT, actor=actor, user=user,
                   data={"recipient": recipient, "note": reason},
                   reason=f"Sign-in link sent to {recipient}: {reason}")


def event_replied(order: Order, *, actor: str, user, subject: str) -> OrderEvent:
    return _record(order, K.REPLIED, actor=actor, user=user, data={"subject": subject[:300]},
                   reason=f"Replied to the customer's email: {subject}")


# --- Support and the customer ------------------------------------------------------------------

def event_case_taken(order: Order, *, actor: str, user, previous=None) -> OrderEvent:
    taken = f", from {previous.get_full_name()}" if previous else ""
    return _record(order, K.CASE_TAKEN, actor=actor, user=user,
                   data={"previous_user_id": previous.pk if previous else None,
                         "previous_name": previous.get_full_name() if previous else ""},
                   reason=f"Took the case{taken}")


def event_team_alerted(order: Order, *, alert_kind: str, summary: str) -> OrderEvent:
    return _record(order, K.TEAM_ALERTED, actor="system", data={"alert_kind": alert_kind, "summary": summary},
                   reason=f"Team alerted: {summary}")


def event_reminders_off(order: Order, *, via: str) -> OrderEvent:
    return _record(order, K.REMINDERS_OFF, actor="customer", data={"via": via},
                   reason=f"Turned off renewal reminders ({via})")


def events_signed_in(user, *, by_link: bool) -> int:
    """Put a customer's sign-in on their latest orders' timelines, so support sees that they got in."""
    if user.is_staff:
        return 0
    method = "a sign-in link" if by_link else "their password"
    events = [_event(order, K.SIGNED_IN, actor="customer", data={"method": "link" if by_link else "password"},
                     reason=f"Signed in to their account with {method}")
              for order in user.orders.order_by("-created_at")[:3]]
    OrderEvent.objects.bulk_create(events)
    return len(events)
