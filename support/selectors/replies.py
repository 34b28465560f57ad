"""The prefilled replies (order_replies): which drafts an order's facts back, and the values their
sentences are filled in with."""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from billing.models import Order
from billing.selectors import access_after_refund, access_until_without, customer_day, order_access
from support.selectors.common import S, _when
from support.selectors.diagnosis import Diagnosis, order_diagnosis
from support.selectors.paid import _activation_wait, _confirmation_facts, order_other_payments

# The prefilled replies: kind, specific, never blaming the customer. Each is offered only when the
# facts its sentences state hold (order_replies); its words are templates/support/replies/<key>.txt
# and <key>_subject.txt, filled in with those facts. The keys, in the order the templates list them:
REPLY_KEYS = ("active", "confirmation_sent", "resent", "two_payments", "refunded", "refund_in_progress",
              "offer_refund", "held", "checking", "not_charged", "disputed", "was_charged", "not_found",
              "unverified_sender")


def reply_render(key: str, values: dict, *, wrote: bool) -> tuple[str, str]:
    """A reply's subject and body, its templates filled in with `values`. `wrote`: the customer
    wrote to us; only then does a draft thank them for writing (a sentence that would be false)."""
    context = {**values, "wrote": wrote}
    subject = render_to_string(f"support/replies/{key}_subject.txt", context).removesuffix("\n")
    body = render_to_string(f"support/replies/{key}.txt", context).removesuffix("\n")
    return subject, body


# Drafts that answer a customer's question: never offered (nor opened) to someone who never wrote;
# to them the other drafts do not thank them for writing either (reply_render's `wrote`).
ANSWERS_ONLY = {"two_payments"}


@dataclass(frozen=True)
class Reply:
    key: str
    subject: str
    body: str
    recommended: bool = False  # the one the diagnosis asks for


def order_replies(order: Order, *, agent_name: str, status_url: str,
                  diagnosis: Diagnosis | None = None, question: str = "", wrote: bool | None = None) -> list[Reply]:
    """The replies that fit this order's state, each only where its facts hold; the one the
    diagnosis names first, or, when the customer asked "Was I charged?" (`question="charged"`),
    the one that answers that with the money first. Every amount is Stripe's; every "we sent" or
    "we refunded" is on the timeline (the outbox, the refunds) or is what the recommended button does.
    `wrote`: whether the customer wrote to us (default: an email of theirs is linked to the order); a
    draft that answers a question ("you paid twice") is offered only to someone who asked."""
    diagnosis = diagnosis or order_diagnosis(order)
    if wrote is None:
        wrote = order.inbound_messages.exists()
    values = {
        "name": f" {order.full_name.split()[0]}" if order.full_name.strip() else "",
        "reference": order.reference, "email": order.email, "plan": order.plan.name, "status_url": status_url,
        "agent": agent_name or settings.SUPPORT_SIGNATURE,
    }
    keys = _reply_facts(order, diagnosis, values)
    if not wrote:
        keys = [key for key in keys if key not in ANSWERS_ONLY]
    if diagnosis.reply in keys:
        keys.remove(diagnosis.reply)
        keys.insert(0, diagnosis.reply)
    if question == "charged" and _was_charged_facts(order, diagnosis, values):
        keys.insert(0, "was_charged")
    return [Reply(key, *reply_render(key, values, wrote=wrote), recommended=key == diagnosis.reply) for key in keys]


def _reply_facts(order: Order, diagnosis: Diagnosis, values: dict) -> list[str]:
    """Which replies this order's facts back; adds the values their sentences need."""
    received = order.amount_received_cents is not None and order.paid_at is not None
    values.update(amount=order.paid_display, paid=_when(order.paid_at) if order.paid_at else "")
    if diagnosis.reply == "checking" or (diagnosis.action == "recover" and order.state != S.REFUND_PENDING):
        # Charged (or maybe charged) and not finished: what Recover is about to do, and no more.
        return ["offer_refund", "checking"] if received else ["checking"]
    if order.state in (S.PENDING, S.FAILED, S.CANCELED):
        values["what"] = {S.PENDING: "the payment was never completed", S.FAILED: "the payment didn't go through",
                          S.CANCELED: "it was canceled before any payment"}[order.state]
        values["again"] = ("" if order.state == S.CANCELED else
                           f" If you'd still like the {order.plan.name} plan, you can pay from your order "
                           f"page:\n{values['status_url']}")
        return ["not_charged", "not_found"]
    if order.state == S.NEEDS_REVIEW:
        if not received:
            return ["checking"]
        values["deadline"] = (f" Unless we finish it by {_when(order.refund_deadline_at)}, we refund you in full "
                              "automatically." if order.held_since and order.refund_deadline_at else "")
        return ["held"]
    if order.state == S.REFUND_PENDING:
        values["refunding"] = order.refundable_display
        return ["refund_in_progress"]
    keys = []
    access = order_access(order)
    if order.state == S.ACTIVE and access.until:
        confirmation = _confirmation_facts(order)
        keys += [confirmation.reply] + (["active"] if confirmation.reply != "active" else [])
        values.update(
            until=customer_day(access.until),
            confirmation_at=_when(confirmation.sent_at) if confirmation.sent_at else "",
            resent_at=_when(confirmation.resent_at) if confirmation.resent_at else "",
            confirmation=(f" We sent your confirmation to {order.email} on {_when(confirmation.sent_at)}."
                          if confirmation.sent_at else
                          f" Your confirmation is on its way to {order.email}." if confirmation.on_its_way else ""),
            sorry=" Sorry for the wait." if _activation_wait(order) else "",
        )
        others = order_other_payments(order)
        if others:
            everyone = sorted([order, *others], key=lambda o: o.created_at)
            remains = access_until_without(order)
            values.update(
                count={2: "two", 3: "three"}.get(len(everyone), str(len(everyone))),
                payments=_and(f"{o.paid_display} on {_when(o.paid_at)} (order {o.reference})" for o in everyone),
                months=order.plan.duration_months,
                after_refund=(f"your plan would then run until {customer_day(remains)}." if remains
                              else "your plan would then end at once."),
            )
            keys.append("two_payments")
    if order.state == S.DISPUTED:
        keys.append("disputed")
    if order.amount_refunded_cents and received:
        keys.append("refunded")
        values.update(_refund_values(order, access))
    return keys


def _was_charged_facts(order: Order, diagnosis: Diagnosis, values: dict) -> bool:
    """The answer to "Was I charged?", from Stripe's figures on the order: what it took, from which
    card and when, and any refund; or that nothing was taken. False when we cannot yet say (the
    payment is still being checked): the "checking" reply is the honest answer then."""
    received = order.amount_received_cents is not None and order.paid_at is not None
    if not received:
        if "what" not in values:  # not known to be unpaid (see _reply_facts): still being checked
            return False
        values.update(money=f"No: no money was taken for order {order.reference}.",
                      now=f" {values['what'][0].upper()}{values['what'][1:]}.{values['again']}")
        return True
    card = (f" from your card ({order.card_brand.title() or 'card'} ending {order.card_last4})"
            if order.card_last4 else "")
    money = f"Yes: Stripe took {order.paid_display}{card} on {_when(order.paid_at)}"
    done = [r for r in order.refunds.all() if r.status == "succeeded"]
    if order.amount_refunded_cents:
        money += f"; we refunded {order.refunded_display} of it" + (f" on {_when(done[-1].created_at)}" if done else "")
        money += ". Banks usually take 5–10 days to show a refund on your statement."
    else:
        money += "."
    if order.statement_descriptor:
        money += f" Your statement shows it as {order.statement_descriptor}."
    access = order_access(order)
    if order.state == S.ACTIVE and access.until:
        now = f" Your {order.plan.name} plan is active until {customer_day(access.until)}."
    elif order.state == S.NEEDS_REVIEW:
        now = (" Your account isn't ready yet: someone on our team needs to check your order before it can be "
               "switched on. If you'd rather not wait, reply and we'll refund you in full. You won't be charged twice.")
    elif order.state == S.REFUND_PENDING:
        now = (f" We've asked our payment provider to refund {order.refundable_display}, and it is confirming it "
               "now; we'll email you once it has.")
    elif order.state == S.DISPUTED:
        now = " Your bank has told us this payment is disputed; your bank decides disputes."
    elif order.state == S.REFUNDED:
        now = access_after_refund(order, access)
    else:  # charged, not finished yet: what Recover is about to do
        now = " We're finishing your order now; you won't be charged twice."
    values.update(money=money, now=now)
    return True


def _refund_values(order: Order, access) -> dict:
    card = f" ({order.card_brand.title() or 'card'} ending {order.card_last4})" if order.card_last4 else ""
    done = [r for r in order.refunds.all() if r.status == "succeeded"]
    full = order.amount_refunded_cents >= order.paid_cents
    if access.granted and (access.in_force or not full):
        after = f" Your {order.plan.name} plan stays active until {customer_day(access.until)}." if access.until else ""
    else:
        after = access_after_refund(order, access)
    return {
        "refunded": order.refunded_display, "card": card,
        "refunded_on": f" on {_when(done[-1].created_at)}" if done else "",
        "part_of": "" if full else f" That is part of your {order.paid_display} payment.",
        "access": after,
    }


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
