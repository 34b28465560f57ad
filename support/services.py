"""Support-team writes: staff accounts and the console's actions (alerts to the team: support/alerts.py)."""

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import locks, stripe_api
from billing.email_kinds import Kind as EmailKind
from billing.errors import BillingError
from billing.models import Order, OrderState
from billing.queue import enqueue_after_commit
from billing.services import (
    entitlement_add_days,
    order_accept_amount,
    order_payment_cancel,
    order_refund,
    order_returned_another_way,
    order_settle,
)
from billing.services.history import (
    event_case_taken,
    event_replied,
    event_resend_asked,
    event_signin_link_sent,
)
from billing.tokens import order_status_token
from config.failpoints import failpoint
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue, outbound_email_requeue
from support import selectors
from support.attachments import inbound_attachments_store
from support.emails import SUPPORT_REPLY
from support.models import ActionReceipt, CaseClaim, CaseView, InboundMessage, Note, SupportReply
from support.selectors import INBOUND_SCAN_LIMIT, signin_link_request

logger = logging.getLogger(__name__)

SUPPORT_GROUP = "Support"
# What every support person may do in the console: see everything about a case, recover it,
# resend, note, extend. Refunds are granted per person (`support_staff --refunds`).
SUPPORT_PERMISSIONS = [
    ("accounts", "view_user"),
    ("accounts", "view_entitlement"),
    ("accounts", "view_accessdelivery"),
    ("billing", "view_plan"),
    ("billing", "view_order"),
    ("billing", "view_orderevent"),
    ("outbox", "view_outboundemail"),
    ("billing", "view_reconcilerun"),
    ("support", "view_alert"),
    ("support", "view_inboundmessage"),
    ("support", "reply_inboundmessage"),
    ("support", "view_note"),
    ("support", "add_note"),
    ("support", "recover_order"),
    ("support", "resend_email"),
    ("support", "extend_access"),
    ("djstripe", "view_customer"),
    ("djstripe", "view_paymentintent"),
    ("djstripe", "view_charge"),
    ("djstripe", "view_refund"),
    ("djstripe", "view_dispute"),
]
REFUND_PERMISSION = ("support", "refund_order")


def _permission(app_label: str, codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@transaction.atomic
def support_group_ensure() -> Group:
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    group.permissions.set([_permission(app_label, codename) for app_label, codename in SUPPORT_PERMISSIONS])
    return group


@transaction.atomic
def support_staff_ensure(*, email: str, password: str, full_name: str = "", refunds: bool = False):
    """Create or refresh a support person who can sign in to the console with this password.

    Idempotent: running it again resets the password and the refund right to what is given.
    """
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, full_name=full_name)
    else:
        user.set_password(password)
        if full_name:
            user.full_name = full_name
    user.is_staff = True
    user.is_active = True
    user.save()
    user.groups.add(support_group_ensure())
    refund = _permission(*REFUND_PERMISSION)
    if refunds:
        user.user_permissions.add(refund)
    else:
        user.user_permissions.remove(refund)
    return user


def support_staff_totp_device(*, user):
    """The person's authenticator-app device for the console's second factor; made once."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        return device, False
    return TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True), True


# --- The console's actions ------------------------------------------------------------------
# Each one: the same service the rest of Backstop uses, as `support:<email>`, done once per
# form (ActionReceipt), recorded on the order's timeline with who and why.


class AlreadyDone(Exception):
    """This form was already submitted (a double click, or a colleague on the same page)."""


def support_actor(user) -> str:
    """The actor text on a staff member's events, for people reading the table; code reads actor_user."""
    return f"support:{user.email}"


def _receipt(*, key, action: str, order_id: int, user):
    """Claim the form's one-time key, or raise AlreadyDone. Runs in the caller's transaction."""
    try:
        with transaction.atomic():
            ActionReceipt.objects.create(key=key, action=action, order_id=order_id, user=user)
    except IntegrityError:
        raise AlreadyDone(f"That {action.replace('_', ' ')} was already done.") from None
    failpoint("support.after_receipt")


def order_recover(*, order_id: int, user):
    """Recover: settle the order with Stripe now. Idempotent by nature, so no receipt needed."""
    return order_settle(order_id=order_id, actor=support_actor(user), user=user, reason="support pressed Recover")


def order_payment_attempt_cancel(*, order_id: int, user, reason: str = ""):
    """Cancel payment attempt: the order's unfinished payment ends in Stripe and the order is
    canceled; refused (billing's PaymentNotCanceled, saying what Stripe shows) when money was taken
    or is on its way. Idempotent by nature (one Stripe idempotency key per order), so no receipt."""
    return order_payment_cancel(order_id=order_id, actor=support_actor(user), user=user,
                                reason=reason.strip() or "support canceled the unfinished payment attempt")


def _once_and_unchanged(*, action: str, order_id: int, user, key, seen: str):
    """A money action's guard: refused now if someone changed the case since this person loaded it
    (`seen`), so a refused action does not even ask Stripe; and the `claim` billing runs under the
    order's lock, where the check that counts is made again and the form's receipt claimed in the
    same transaction as the action, so a colleague acting at once sees it and a crash before that
    commit leaves the form free to be sent again."""
    _refuse_if_changed(selectors.order_case_changes(order_id, seen=seen, user=user, except_key=key))

    def claim():
        _receipt(key=key, action=action, order_id=order_id, user=user)
        _refuse_if_changed(selectors.order_case_changes(order_id, seen=seen, user=user, except_key=key))

    return claim


def order_refund_by_support(*, order_id: int, user, key, reason: str, seen: str, amount_cents: int | None = None):
    """Refund as this person, once per form, and only if no one changed the case since they
    loaded it (`seen`); Stripe is called after the lock, outside it."""
    claim = _once_and_unchanged(action="refund", order_id=order_id, user=user, key=key, seen=seen)
    return order_refund(order_id=order_id, actor=support_actor(user), user=user, reason=reason,
                        amount_cents=amount_cents, claim=claim)


def order_accept_by_support(*, order_id: int, user, key, reason: str, seen: str):
    """Accept what Stripe took for a held order ($248 for $249) as this person, once per form and
    only if no one changed the case since they loaded it: billing grants the plan for it."""
    claim = _once_and_unchanged(action="accept", order_id=order_id, user=user, key=key, seen=seen)
    return order_accept_amount(order_id=order_id, actor=support_actor(user), user=user, reason=reason,
                               claim=claim)


def order_returned_another_way_by_support(*, order_id: int, user, key, how: str, seen: str):
    """Record, as this person and once per form, that they returned a refund the customer's bank
    sent back another way; refused if someone changed the case since they loaded it."""
    claim = _once_and_unchanged(action="returned_another_way", order_id=order_id, user=user, key=key, seen=seen)
    return order_returned_another_way(order_id=order_id, actor=support_actor(user), user=user, how=how,
                                      claim=claim)


def order_note_add(*, order_id: int, user, body: str, key):
    body = body.strip()
    if not body:
        raise ValueError("A note needs some text.")
    with transaction.atomic():
        _receipt(key=key, action="note", order_id=order_id, user=user)
        return Note.objects.create(order_id=order_id, author=user, body=body)


def entitlement_extend(*, order_id: int, user, days: int, reason: str, key, seen: str):
    """Give the customer more time on their plan (an outage, a goodwill gesture)."""
    if not 1 <= days <= 366:
        raise ValueError("Extend by 1 to 366 days.")
    if not reason.strip():
        raise ValueError("Say why, for the customer's history.")

    with transaction.atomic():
        locks.order_lock(order_id)
        _receipt(key=key, action="extend", order_id=order_id, user=user)
        _refuse_if_changed(selectors.order_case_changes(order_id, seen=seen, user=user, except_key=key))
        entitlement = entitlement_add_days(order_id=order_id, days=days, actor=support_actor(user), user=user,
                                           reason=reason)
        # The customer hears of it, in this transaction: days given and nothing said are days that
        # nobody uses. The email states the days and the new end as decided here; support's reason
        # is for the history and stays out of it (it may name an outage or a colleague).
        first = user.full_name.split()[0] if user.full_name.strip() else ""
        outbound_email_queue(about=entitlement.order, kind=EmailKind.ACCESS_EXTENDED,
                             recipient=entitlement.user.email,
                             sent_by=f"{first} from our support team" if first else "Our support team",
                             facts={"days": days, "ends_at": entitlement.access_until.isoformat()},
                             dedupe_key=f"extended:{order_id}:{key}")
        return entitlement


def outbound_email_resend(*, order_id: int, kind: str, user, key):
    """Send the customer's email of this kind again: the same outbox row, so the same Message-ID."""
    with transaction.atomic():
        _receipt(key=key, action=f"resend_{kind}", order_id=order_id, user=user)
        email = OutboundEmail.objects.select_for_update().about(Order(pk=order_id)).filter(kind=kind).first()
        if email is None:
            raise ValueError("There is no such email on this order to resend.")
        if not outbound_email_requeue(email=email):
            return email  # already on its way
        event_resend_asked(email, actor=support_actor(user), user=user)
    return email


# --- Inbound support email ----------------------------------------------------------------------


def inbound_message_receive(*, message_id: str, from_email: str, from_name: str, subject: str, text: str,
                            sender_authenticated: bool = False, sender_check: str = "", rfc_message_id: str = "",
                            attachments=()):
    """A customer wrote to support: store the case (bounded) with what they attached (up to
    INBOUND_ATTACHMENTS_MAX_MB, support/attachments.py) and queue the matching for the worker,
    so the provider's webhook is answered at once whatever the size of the email.

    Idempotent on the ESP's message id (providers retry their webhooks).
    """
    with transaction.atomic():
        message, created = InboundMessage.objects.get_or_create(message_id=message_id[:255], defaults={
            "from_email": from_email[:254], "from_name": from_name[:200], "subject": subject[:300],
            "body": text[:INBOUND_SCAN_LIMIT], "sender_authenticated": sender_authenticated,
            "sender_check": sender_check[:200], "rfc_message_id": rfc_message_id.strip()[:998]})
        if created:
            inbound_attachments_store(message=message, attachments=list(attachments))
            enqueue_after_commit("support.tasks.match_inbound_message", message.id,
                                 task_name=f"inbound-{message.id}-match")
    return message


def inbound_message_match(*, message_id: int):
    """Match a stored support email to its candidate orders, fix what Backstop can on its own, and
    leave the case open with the diagnosis and a drafted reply for a person to send.

    The draft carries an order's details only for its owner: an authenticated From that is the
    order's own address. Anyone else gets a draft with none (ask them to write from the address
    they paid with, or use Find my order); the candidates stay linked for support. Safe to run twice.
    """
    message = InboundMessage.objects.filter(pk=message_id, matched_at=None).first()
    if message is None:
        return None  # already matched (a redelivered task)
    from_email = message.from_email
    done, orders = [], []
    for order in selectors.orders_mentioned(from_email=from_email, subject=message.subject, text=message.body):
        if order.stripe_payment_intent_id and order.state in (OrderState.PENDING, OrderState.PROCESSING,
                                                              OrderState.FAILED, OrderState.PAID):
            # Asking Stripe tells the sender nothing: whatever it finds is mailed to the order's address.
            before = order.state
            try:
                order = order_settle(order_id=order.id, actor="support:inbound-email",
                                     reason="the customer wrote to support")
            except (BillingError, stripe_api.StripeError) as exc:
                logger.warning("Inbound email: could not check %s with Stripe: %s", order.reference, exc)
            else:
                if order.state != before:
                    done.append(f"{order.reference}: {before} → {order.state}")
        orders.append(order)  # as settle left it, so the diagnosis and the draft see the new state
    owned = [o for o in orders if selectors.inbound_sender_owns(
        o, from_email=from_email, sender_authenticated=message.sender_authenticated)]
    first = message.from_name.split()[0] if message.from_name.strip() else ""
    agent = settings.SUPPORT_SIGNATURE
    if owned:
        case = owned[0]
        found = selectors.order_diagnosis(case)
        diagnosis = found.summary
        others = len(orders) - len(owned)
        if others:  # linked for support by a reference or Stripe id the email quotes, never theirs to hear about
            diagnosis += (f" Also linked: {others} order(s) the email quotes that are not the sender's; "
                          "the draft shares nothing of them.")
        status_url = settings.SITE_URL + reverse("billing:status", kwargs={"token": order_status_token(case)})
        # The reply the diagnosis names, with only the sentences the order's facts back.
        asked = selectors.inbound_tokens(subject=message.subject, text=message.body).asks_if_charged
        replies = selectors.order_replies(case, agent_name="", status_url=status_url, diagnosis=found,
                                          question="charged" if asked else "", wrote=True)
        if done and not asked:  # we just finished their order: that it is active is the news
            replies.sort(key=lambda r: r.key != "active")
        reply = ({"subject": replies[0].subject, "body": replies[0].body} if replies else
                 {"subject": "About your order", "body": f"Hello{f' {first}' if first else ''},\n\n"
                  f"Thank you for writing.\n\n{agent}"})
    elif orders:
        why = (f"the From address is on the order but the provider could not confirm it ({message.sender_check})"
               if any(selectors.inbound_sender_owns(o, from_email=from_email, sender_authenticated=True)
                      for o in orders)
               else f"{from_email} is not the address on any of them")
        diagnosis = (f"Unverified sender: {len(orders)} candidate order(s) linked for you only; {why}. "
                             "Share nothing about an order until they write from its address or use Find my order.")
        # Our words only, nothing from any candidate order.
        subject, body = selectors.reply_render("unverified_sender", {
            "lookup_url": settings.SITE_URL + reverse("billing:lookup"), "agent": agent}, wrote=True)
        reply = {"subject": subject, "body": body}
    else:
        diagnosis = f"No order or payment matches {from_email} or anything in the message."
        subject, body = selectors.reply_render("not_found", {
            "name": f" {first}" if first else "", "email": from_email, "agent": agent}, wrote=True)
        reply = {"subject": subject, "body": body}
    with transaction.atomic():
        message = InboundMessage.objects.select_for_update().get(pk=message.pk)
        if message.matched_at is not None:
            return message  # a concurrent run got there first
        message.orders.set(orders)
        message.diagnosis = diagnosis
        message.done_automatically = "; ".join(done)[:500]
        message.draft_subject = reply_subject(message.subject) or reply["subject"]
        message.draft_body = reply["body"]
        message.matched_at = timezone.now()
        message.save()
    return message


def inbound_messages_answered(*, ids: list[int], user) -> int:
    return InboundMessage.objects.filter(id__in=ids, status=InboundMessage.Status.OPEN).update(
        status=InboundMessage.Status.ANSWERED, answered_by=user, answered_at=timezone.now())


def order_signin_link_send(*, order_id: int, user, key, reason: str = ""):
    """Email the customer a fresh one-click sign-in link (never to a staff account), saying who sent
    it and why: `reason` in the customer's words, or, left empty, "as you asked" when an email from
    the order's own address asking us is on the case (support.selectors.signin_link_request)."""
    reason = " ".join(reason.split())
    with transaction.atomic():
        _receipt(key=key, action="signin_link", order_id=order_id, user=user)
        order = Order.objects.select_related("user").get(pk=order_id)
        if order.user is None:
            raise ValueError("This order has no account yet; Recover it first.")
        if order.user.is_staff or not order.user.is_active:
            raise ValueError("Sign-in links are for customer accounts only.")
        if not reason:
            asked = signin_link_request(order)
            if asked is None:
                raise ValueError("Say why you are sending it: the customer reads it in the email. (No email from "
                                 "them asking for one is on this case.)")
            reason = f"We're sending it as you asked in your email of {timezone.localtime(asked.received_at):%B %-d}."
        elif reason[-1] not in ".!?":
            reason += "."
        first = user.full_name.split()[0] if user.full_name.strip() else ""
        email = outbound_email_queue(about=order, kind=EmailKind.SIGNIN_LINK, recipient=order.user.email,
                                     sent_by=f"{first} from our support team" if first else "Our support team",
                                     send_reason=reason)
        event_signin_link_sent(order, actor=support_actor(user), user=user, recipient=order.user.email,
                               reason=reason)
    return email


# --- Two people, one inbox: replies, claims, and who else is on a case ------------------------
# A person acts on what their page showed them: the forms carry the case's version as loaded
# (support.selectors.order_case_version / inbound_case_version), and an action is refused when a
# colleague changed the case since, so two presses of "Extend 30 days" on two page loads extend
# once. A double click on one page is the one-time key's job (_receipt).


class CaseChanged(AlreadyDone):
    """The case changed since the person loaded the page: nothing was done."""


def _refuse_if_changed(changes: list[str]):
    if changes:
        raise CaseChanged(f"Nothing was done: since you opened this case, {changes[0]}. "
                          "Reload the page, check, and press again if it is still needed.")


def reply_subject(subject: str) -> str:
    """"Re: <their subject>", with one Re: however many their subject already carries."""
    bare = re.sub(r"^(\s*re\s*:\s*)+", "", subject or "", flags=re.IGNORECASE).strip()
    return f"Re: {bare}"[:300] if bare else ""


def inbound_message_reply_send(*, message_id: int, user, key, subject: str, body: str, seen: str):
    """Send a person's reply to a support email through the outbox, threaded under it, and mark
    the email answered, in one go. Only to the email's From address; about an order (on its
    timeline) only when the sender is that order's verified owner, else about none."""
    subject = " ".join(subject.split())
    subject = reply_subject(subject) if subject.lower().startswith("re:") else subject[:300]
    body = body.strip()
    if not subject or not body:
        raise ValueError("A reply needs a subject and some words.")
    with transaction.atomic():
        message = InboundMessage.objects.select_for_update().get(pk=message_id)
        _receipt(key=key, action="reply", order_id=None, user=user)
        _refuse_if_changed(selectors.inbound_case_changes(message, seen=seen, user=user))
        owned = [o for o in message.orders.all() if selectors.inbound_sender_owns(
            o, from_email=message.from_email, sender_authenticated=message.sender_authenticated)]
        order = owned[0] if owned else None
        email = outbound_email_queue(kind=SUPPORT_REPLY, about=order,
                                     recipient=message.from_email, subject=subject, body=body,
                                     in_reply_to=message.rfc_message_id)
        reply = SupportReply.objects.create(message=message, email=email, user=user)
        if order is not None:
            event_replied(order, actor=support_actor(user), user=user, subject=subject)
        if message.status == InboundMessage.Status.OPEN:
            message.status = InboundMessage.Status.ANSWERED
            message.answered_by, message.answered_at = user, timezone.now()
            message.save(update_fields=["status", "answered_by", "answered_at"])
    return reply


def inbound_message_answer(*, message_id: int, user):
    """Mark one support email answered (the reply went another way, or none is needed)."""
    if not inbound_messages_answered(ids=[message_id], user=user):
        message = InboundMessage.objects.select_related("answered_by").get(pk=message_id)
        who = message.answered_by.get_full_name() if message.answered_by else "someone"
        raise AlreadyDone(f"Already answered by {who}.")
    return InboundMessage.objects.get(pk=message_id)


def _case(order_id, message_id) -> dict:
    if (order_id is None) == (message_id is None):
        raise ValueError("A case is one order or one support email.")
    return {"order_id": order_id} if order_id is not None else {"message_id": message_id}


def case_claim(*, user, order_id: int | None = None, message_id: int | None = None):
    """"<name> is on it": this person takes the case (from a colleague too, who is named on the
    order's timeline). Returns the claim and who had it before (or None)."""
    case = _case(order_id, message_id)
    now = timezone.now()
    with transaction.atomic():
        claim, created = CaseClaim.objects.select_for_update().get_or_create(
            **case, defaults={"user": user, "claimed_at": now})
        previous = None if created or claim.user_id == user.id else claim.user
        if not created and claim.user_id == user.id:
            return claim, None
        claim.user, claim.claimed_at = user, now
        claim.save(update_fields=["user", "claimed_at"])
        if order_id is not None:
            event_case_taken(Order.objects.get(pk=order_id), actor=support_actor(user), user=user, previous=previous)
    return claim, previous


def case_release(*, user, order_id: int | None = None, message_id: int | None = None) -> bool:
    return CaseClaim.objects.filter(**_case(order_id, message_id), user=user).delete()[0] > 0


CASE_VIEW_EVERY = timedelta(minutes=1)


def case_view_record(*, user, order_id: int | None = None, message_id: int | None = None, now=None):
    """Remember that this person has the case open, for a colleague's warning; at most one write
    a minute per person and case, however often the page is loaded."""
    case = _case(order_id, message_id)
    now = now or timezone.now()
    if CaseView.objects.filter(user=user, **case, viewed_at__lt=now - CASE_VIEW_EVERY).update(viewed_at=now):
        return
    try:
        with transaction.atomic():
            CaseView.objects.get_or_create(user=user, **case, defaults={"viewed_at": now})
    except IntegrityError:
        pass  # the same person's other tab, a moment ago
