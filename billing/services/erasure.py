"""Erase a customer for good (docs/decisions/0025-erasure.md).

Rows kept for bookkeeping (orders, refunds, the events of what money did) keep their amounts,
dates and references; every personal field on them is replaced by the erasure's placeholder
address (erased-<keyed hash>@invalid) or emptied. The account is anonymised and closed, not
deleted: its entitlements are the record of what the payments bought. Stripe's copies are cleared
through the Stripe door and marked `backstop_erased`, which is what a restore of an older backup
cannot take back: adoption never recreates a marked payment's customer, and the sweep erases again
a restored order whose payment carries the mark (`erasures_reapply`).

Order of work, so that a crash anywhere is finished by running it again: the local record, then
Stripe (outside any transaction, each call safe to repeat), then every local row in one transaction.
"""

import json
import logging
from dataclasses import dataclass, field

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.crypto import salted_hmac
from djstripe import models as djstripe_models

from accounts.models import AccessDelivery, Entitlement, User, normalize_email
from billing import signals, stripe_api
from billing.errors import BillingError, ErasureRefused
from billing.models import ErasureRecord, Order, OrderEvent, OrderState, StripeCustomer
from billing.services.attempts import order_payment_cancel
from outbox.models import OutboundEmail

logger = logging.getLogger(__name__)

# The metadata key on Stripe's objects that says their person was erased, and when.
ERASED_MARK = "backstop_erased"
PLACEHOLDER_DOMAIN = "invalid"  # RFC 2606: never delivered anywhere
ERASED_WORD = "[erased]"
S = OrderState
# Orders whose money is still moving or waits for a person: finished first (refunded, resolved),
# so nobody is left owed money with no address to tell them.
MONEY_OPEN = (S.PROCESSING, S.PAID, S.REFUND_PENDING, S.DISPUTED, S.NEEDS_REVIEW)


def erasure_placeholder(email: str) -> str:
    """The address's stand-in: the same for one address (so a repeated erasure finds its record),
    unlinkable to it without the SECRET_KEY."""
    digest = salted_hmac("backstop.erasure", normalize_email(email)).hexdigest()[:16]
    return f"erased-{digest}@{PLACEHOLDER_DOMAIN}"


def is_erased_address(email: str) -> bool:
    return email.startswith("erased-") and email.endswith(f"@{PLACEHOLDER_DOMAIN}")


@dataclass
class ErasurePlan:
    """What an erasure of `email` would touch: read, not yet done."""

    email: str
    placeholder: str
    user: User | None
    order_ids: list[int]
    references: list[str]
    names: list[str]
    customer_ids: list[str]
    payment_intent_ids: list[str]
    charge_ids: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """What would be removed, in words a person confirms."""
        lines = []
        if self.user is not None:
            lines.append(f"the account {self.email} (closed; name, company and VAT number removed)")
        if self.references:
            lines.append(f"{len(self.references)} order(s) ({', '.join(self.references)}): address, name, company, "
                         "VAT number and card digits removed; amounts, dates and references kept for bookkeeping")
        lines.append("the address and name in every event, email and support message about them")
        if self.customer_ids:
            lines.append(f"at Stripe: the name, email, phone and address of {', '.join(self.customer_ids)} and the "
                         f"address on {len(self.payment_intent_ids)} payment(s), each marked {ERASED_MARK}")
        elif self.payment_intent_ids:  # an address that bought once has no Stripe Customer (decision 0034)
            lines.append(f"at Stripe: the address on {len(self.payment_intent_ids)} payment(s), "
                         f"each marked {ERASED_MARK}")
        return lines


def customer_erasure_plan(email: str, *, held_elsewhere: bool = False) -> ErasurePlan | None:
    """What Backstop holds about `email` that an erasure would touch, or None if nothing (and
    the caller knows of nothing `held_elsewhere`, e.g. support mail, which billing cannot see)."""
    email = normalize_email(email)
    user = User.objects.filter(email=email).first()
    orders = list(Order.objects.filter(Q(email=email) | Q(user__email=email)).order_by("created_at"))
    customer_ids = sorted(set(StripeCustomer.objects.filter(email=email).values_list("stripe_customer_id", flat=True))
                          | {order.stripe_customer_id for order in orders if order.stripe_customer_id})
    has_email = OutboundEmail.objects.filter(recipient=email).exists()
    if user is None and not orders and not customer_ids and not has_email and not held_elsewhere:
        return None
    names = {order.full_name for order in orders} | {order.buyer_company_name for order in orders}
    if user is not None:
        names |= {user.full_name, user.company_name}
    return ErasurePlan(
        email=email, placeholder=erasure_placeholder(email), user=user,
        order_ids=[order.id for order in orders], references=[order.reference for order in orders],
        # Longest first, so "Ada Lovelace" goes before "Ada"; very short ones would hit other words.
        names=sorted((name.strip() for name in names if len(name.strip()) >= 3), key=len, reverse=True),
        customer_ids=customer_ids,
        payment_intent_ids=sorted({order.stripe_payment_intent_id for order in orders
                                   if order.stripe_payment_intent_id}),
        charge_ids=sorted({order.stripe_charge_id for order in orders if order.stripe_charge_id}),
    )


def scrub_text(text: str, plan: ErasurePlan) -> str:
    if not text:
        return text
    lowered = text.lower()
    if plan.email in lowered:
        start = 0
        while (found := lowered.find(plan.email, start)) != -1:
            text = text[:found] + plan.placeholder + text[found + len(plan.email):]
            lowered = text.lower()
            start = found + len(plan.placeholder)
    for name in plan.names:
        text = text.replace(name, ERASED_WORD)
    return text


# Keys of Stripe objects (and of our event data) that hold a person, whatever their value.
PERSONAL_KEYS = {"email", "name", "phone", "address", "receipt_email", "backstop_email", "shipping"}


def scrub_json(value, plan: ErasurePlan | None, *, stripe: bool = False):
    """`value` with the person's address and names replaced (when `plan` says whose); with
    `stripe`, also every field of a Stripe object that holds a person (a charge's billing details,
    a customer's phone) emptied."""
    if isinstance(value, dict):
        return {key: (None if stripe and key in PERSONAL_KEYS and isinstance(item, (str, dict)) and item
                      else scrub_json(item, plan, stripe=stripe))
                for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_json(item, plan, stripe=stripe) for item in value]
    if isinstance(value, str) and plan is not None:
        return scrub_text(value, plan)
    return value


def customer_erase(*, email: str, actor: str, money_checked: bool = True,
                   held_elsewhere: bool = False) -> ErasureRecord:
    """Erase the person with this address, at Stripe and here. Safe to run again (it finishes
    an interrupted erasure, or finds nothing left and raises BillingError).

    Refused (ErasureRefused) while one of their orders has money moving or held; their payments
    never finished are canceled at Stripe first, so none can be completed after they are gone.
    `money_checked=False` is for the sweep erasing again someone already erased (Stripe says so).
    """
    plan = customer_erasure_plan(email, held_elsewhere=held_elsewhere)
    if plan is None:
        raise BillingError(f"Nothing is held about {normalize_email(email)}.")
    orders = list(Order.objects.filter(pk__in=plan.order_ids))
    open_orders = [order for order in orders if order.state in MONEY_OPEN or order.held_since is not None]
    if open_orders and money_checked:
        raise ErasureRefused("Not erased: " + "; ".join(
            f"{order.reference} is {order.get_state_display().lower()}" for order in open_orders)
            + ". Finish those first (refund or resolve them), then erase.")
    for order in orders:
        if order.state in (S.PENDING, S.FAILED):
            order_payment_cancel(order_id=order.id, actor=actor, reason="the customer asked to be erased")
    record, _ = ErasureRecord.objects.get_or_create(
        placeholder=plan.placeholder,
        defaults={"actor": actor[:200], "references": plan.references,
                  "stripe_ids": plan.customer_ids + plan.payment_intent_ids})
    _stripe_erase(plan, record)
    _local_erase(plan, record)
    logger.info("erased the customer of %s (%s)", ", ".join(plan.references) or "no orders", record.placeholder)
    return record


def _stripe_erase(plan: ErasurePlan, record: ErasureRecord) -> None:
    stamp = record.created_at.replace(microsecond=0).isoformat()
    mark = {ERASED_MARK: stamp}
    payment_intents, charges = set(plan.payment_intent_ids), set(plan.charge_ids)
    for customer_id in plan.customer_ids:
        # Payments our database may not know (lost in a restore) are theirs too.
        payment_intents |= {pi.id for pi in stripe_api.payment_intents_of_customer(customer_id)}
        charges |= {charge.id for charge in stripe_api.charges_of_customer(customer_id)}
    key = f"{int(record.created_at.timestamp())}"
    for customer_id in plan.customer_ids:
        stripe_api.customer_erase_personal(customer_id, idempotency_key=f"backstop-erase-{customer_id}-{key}",
                                           mark=mark)
    for payment_intent_id in sorted(payment_intents):
        stripe_api.payment_intent_erase_personal(
            payment_intent_id, idempotency_key=f"backstop-erase-{payment_intent_id}-{key}", mark=mark)
    for charge_id in sorted(charges):
        stripe_api.charge_erase_personal(charge_id, idempotency_key=f"backstop-erase-{charge_id}-{key}", mark=mark)
    plan.payment_intent_ids, plan.charge_ids = sorted(payment_intents), sorted(charges)
    ErasureRecord.objects.filter(pk=record.pk).update(stripe_done_at=timezone.now())


def _local_erase(plan: ErasurePlan, record: ErasureRecord) -> None:
    now = timezone.now()
    with transaction.atomic():
        orders = list(Order.objects.select_for_update().filter(pk__in=plan.order_ids).order_by("pk"))
        for order in orders:
            Order.objects.filter(pk=order.pk).update(
                email=plan.placeholder, full_name="", buyer_company_name="", buyer_vat_number="", browser_key="",
                card_last4="", attention_reason=scrub_text(order.attention_reason, plan),
                refund_reason=scrub_text(order.refund_reason, plan), updated_at=now)
        for event in OrderEvent.objects.filter(order_id__in=plan.order_ids):
            # Append-only for the code that writes history; the erasure rewrites words, not facts.
            OrderEvent.objects.filter(pk=event.pk).update(
                reason=scrub_text(event.reason, plan), actor=scrub_text(event.actor, plan),
                data=scrub_json(event.data, plan))
        about_them = Q(recipient=plan.email) | Q(about_type=ContentType.objects.get_for_model(Order),
                                                 about_id__in=plan.order_ids)
        if plan.user is not None:
            about_them |= Q(user=plan.user)
        for email in OutboundEmail.objects.filter(about_them):
            OutboundEmail.objects.filter(pk=email.pk).update(
                recipient=plan.placeholder, subject=scrub_text(email.subject, plan),
                body="",  # only a person's reply keeps words on the row; the other kinds render templates
                send_reason=scrub_text(email.send_reason, plan), last_error=scrub_text(email.last_error, plan),
                facts=scrub_json(email.facts, plan))
        StripeCustomer.objects.filter(email=plan.email).update(email=plan.placeholder)
        # Sign-in attempts are logged by the address typed (django-axes), with the browser's IP.
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username__iexact=plan.email).delete()
        if plan.user is not None:
            _account_close(plan, now=now)
        _sessions_end(plan, now=now)
        _mirror_scrub(plan)
        signals.customer_erased.send(sender=None, plan=plan)
        ErasureRecord.objects.filter(pk=record.pk).update(finished_at=now)


def _account_close(plan: ErasurePlan, *, now) -> None:
    user = User.objects.select_for_update().get(pk=plan.user.pk)
    user.email, user.full_name, user.company_name, user.vat_number = plan.placeholder, "", "", ""
    user.renewal_reminders, user.is_active = False, False
    user.set_unusable_password()
    user.save()
    Entitlement.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now,
                                                                          revoked_reason="customer erased")
    # What the product behind the shop was sent (or owed) names them; the product erases its own.
    AccessDelivery.objects.filter(user=user).delete()


def _sessions_end(plan: ErasurePlan, *, now) -> None:
    """Browsers signed in as them, or that proved their address, hold it in the session: ended.
    Every live session is decoded (the data is signed, not searchable); erasures are rare."""
    user_id = str(plan.user.pk) if plan.user is not None else None
    for session in Session.objects.filter(expire_date__gt=now).iterator():
        data = session.get_decoded()
        if (user_id is not None and data.get("_auth_user_id") == user_id) or \
                plan.email in json.dumps(data, default=str).lower():
            session.delete()


def _mirror_scrub(plan: ErasurePlan) -> None:
    """dj-stripe's copies of their Stripe objects, and the events and webhook bodies naming them."""
    for model, ids in ((djstripe_models.Customer, plan.customer_ids),
                       (djstripe_models.PaymentIntent, plan.payment_intent_ids),
                       (djstripe_models.Charge, plan.charge_ids)):
        for row in model.objects.filter(id__in=ids):
            changes = {"stripe_data": scrub_json(row.stripe_data, plan, stripe=True),
                       "metadata": scrub_json(row.metadata, plan, stripe=True)}
            if model is djstripe_models.Customer:
                changes["email"] = ""
            model.objects.filter(pk=row.pk).update(**changes)
    for row in djstripe_models.PaymentMethod.objects.filter(customer_id__in=plan.customer_ids):
        djstripe_models.PaymentMethod.objects.filter(pk=row.pk).update(
            stripe_data=scrub_json(row.stripe_data, plan, stripe=True))
    events = djstripe_models.Event.objects.annotate(text=Cast("stripe_data", TextField())).filter(
        text__icontains=plan.email)
    for event in events:
        djstripe_models.Event.objects.filter(pk=event.pk).update(
            stripe_data=scrub_json(event.stripe_data, plan, stripe=True))
    for trigger in djstripe_models.WebhookEventTrigger.objects.filter(body__icontains=plan.email):
        djstripe_models.WebhookEventTrigger.objects.filter(pk=trigger.pk).update(body=scrub_text(trigger.body, plan))


def erasures_reapply(*, changed_since=None, actor: str = "sweep") -> list[tuple[str, str]]:
    """Erase again the people a restored backup brought back: local orders whose payment Stripe
    (per the mirror) marks erased but which still carry an address. Only the mirror rows changed
    since `changed_since` are read (the sweep's window; `reconcile --since all` reads them all).
    Returns (placeholder, "" or what stopped it) for each person, the others done whatever one does."""
    marked = djstripe_models.PaymentIntent.objects.filter(metadata__has_key=ERASED_MARK)
    if changed_since is not None:
        marked = marked.filter(djstripe_updated__gte=changed_since)
    marked = marked.values_list("id", flat=True)
    emails = (Order.objects.filter(stripe_payment_intent_id__in=marked).exclude(email__startswith="erased-")
              .values_list("email", flat=True).distinct())
    done = []
    for email in list(emails):
        try:
            customer_erase(email=email, actor=actor, money_checked=False)
        except (BillingError, stripe_api.StripeError) as exc:
            done.append((erasure_placeholder(email), str(exc)))
        else:
            done.append((erasure_placeholder(email), ""))
    return done
