"""Billing writes. Views, webhooks, tasks, admin actions and commands call these; nothing else
changes billing state.

The rules every function here keeps:
- Stripe is never called inside a transaction that holds an order lock; we read Stripe first,
  then lock, re-read and decide (so a slow Stripe never blocks another path on the same order).
- Every Stripe mutation carries an idempotency key derived from the order, so repeating any step
  after a crash returns the first result instead of doing the thing twice.
- Every state change goes through `_move`, which refuses transitions the state machine does not
  list and appends an OrderEvent with the actor and the reason.
"""

import calendar
import logging
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from accounts.models import Entitlement, normalize_email
from billing import locks, stripe_api
from billing.errors import InvalidTransition, PaymentSetupFailed
from billing.models import Order, OrderEvent, OrderState, OutboundEmail, Plan
from billing.money import format_money
from billing.queue import enqueue_after_commit
from billing.states import can_transition

logger = logging.getLogger(__name__)
S = OrderState

DEFAULT_PLAN = {
    "code": "annual",
    "name": "Annual",
    "amount_cents": 24900,
    "currency": "usd",
    "duration_months": 12,
}

# Past this age Stripe may have forgotten our idempotency key (it keeps them 24 hours), so
# before creating anything for an older order we search Stripe for what already exists.
IDEMPOTENCY_KEY_SAFE_AGE = timedelta(hours=23)


# --- Plans and setup -------------------------------------------------------------------------


@transaction.atomic
def plan_ensure_default() -> Plan:
    """Create the Annual plan once; re-running never changes a plan that is already on sale."""
    plan, _created = Plan.objects.get_or_create(
        code=DEFAULT_PLAN["code"],
        defaults={k: v for k, v in DEFAULT_PLAN.items() if k != "code"},
    )
    return plan


@transaction.atomic
def stripe_webhook_endpoint_ensure(*, secret: str, uuid: str, url: str, livemode: bool):
    """Store the signing secret of the Stripe webhook endpoint where dj-stripe verifies it.

    The endpoint itself is configured in Stripe (dashboard, or the emulator's --webhook flag);
    this keeps our side in step so that `stripe/webhook/<uuid>/` accepts its signed events.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("The webhook signing secret starts with whsec_.")
    endpoint, _created = WebhookEndpoint.objects.update_or_create(
        djstripe_uuid=uuid,
        defaults={
            "id": f"we_backstop_{str(uuid).replace('-', '')[:20]}",
            "secret": secret,
            "url": url,
            "livemode": livemode,
            "status": "enabled",
            "enabled_events": ["*"],
            "stripe_data": {},
        },
    )
    return endpoint


# --- Checkout ----------------------------------------------------------------------------------


def order_create(*, plan: Plan, email: str, full_name: str = "", checkout_nonce=None,
                 actor: str = "checkout") -> Order:
    """Write the intent to buy before any money moves. A repeated nonce returns the first order."""
    if checkout_nonce is not None:
        existing = Order.objects.filter(checkout_nonce=checkout_nonce).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            order = Order.objects.create(
                plan=plan,
                email=normalize_email(email),
                full_name=full_name.strip(),
                amount_cents=plan.amount_cents,
                currency=plan.currency,
                checkout_nonce=checkout_nonce,
            )
            _record(order, actor=actor, reason=f"Order created for {order.amount_display}", to_state=S.PENDING)
    except IntegrityError:
        # Two submits of the same form raced; the other one won and owns the order.
        if checkout_nonce is None:
            raise
        return Order.objects.get(checkout_nonce=checkout_nonce)
    return order


def order_prepare_payment(*, order: Order, actor: str = "checkout"):
    """Make sure the order has its Stripe Customer and PaymentIntent; return the PaymentIntent.

    Safe to call any number of times, from any process: the idempotency keys make Stripe return
    the same objects, and the ids are stored only if no other call stored them first.
    """
    if order.stripe_payment_intent_id:
        return stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)

    existing = None
    if timezone.now() - order.created_at > IDEMPOTENCY_KEY_SAFE_AGE:
        existing = next(iter(stripe_api.payment_intent_search_by_order(order.id)), None)
    try:
        if existing is not None:
            payment_intent = existing
            customer_id = existing.customer if isinstance(existing.customer, str) else existing.customer.id
        else:
            metadata = {"order_id": str(order.id), "reference": order.reference, "email": order.email}
            customer = stripe_api.customer_create(
                idempotency_key=f"backstop-order-{order.public_id}-customer",
                email=order.email,
                name=order.full_name or None,
                metadata=metadata,
            )
            customer_id = customer.id
            payment_intent = stripe_api.payment_intent_create(
                idempotency_key=f"backstop-order-{order.public_id}-payment-intent",
                amount=order.amount_cents,
                currency=order.currency,
                customer=customer_id,
                automatic_payment_methods={"enabled": True},
                receipt_email=order.email,
                description=f"{order.plan.name} plan, order {order.reference}",
                # The bank line reads e.g. "BACKSTOP* 7F3K9QX2": recognisable, and support can
                # find the order from it.
                statement_descriptor_suffix=order.reference.replace("BK-", "").replace("-", ""),
                metadata=metadata,
            )
    except stripe_api.StripeError as exc:
        logger.warning("Payment setup failed for %s: %s", order.reference, exc)
        raise PaymentSetupFailed(str(exc)) from exc

    with transaction.atomic():
        locked = locks.order_lock(order.id)
        if not locked.stripe_payment_intent_id:
            locked.stripe_customer_id = customer_id
            locked.stripe_payment_intent_id = payment_intent.id
            locked.save(update_fields=["stripe_customer_id", "stripe_payment_intent_id", "updated_at"])
            _record(locked, actor=actor, reason="Payment set up with Stripe",
                    stripe_ids={"customer": customer_id, "payment_intent": payment_intent.id})
    order.refresh_from_db()
    return payment_intent


# --- Settle: the one way an order moves on -----------------------------------------------------


def order_settle(*, order_id: int, actor: str, reason: str = "", payment_intent=None) -> Order:
    """Bring the order in line with what Stripe says, and return it.

    Any path may call this any number of times, concurrently: the webhook task, the customer's
    status page, the sweep, support. It reads Stripe's PaymentIntent (unless the caller passes a
    fresh one), then locks the order, re-reads it and applies only the moves the truth requires.
    Paid orders become active with exactly one entitlement and one confirmation email; a
    mismatch between what Stripe took and what the order asked for goes to needs_review.
    """
    order = Order.objects.only("id", "state", "stripe_payment_intent_id").get(pk=order_id)
    if not order.stripe_payment_intent_id:
        return Order.objects.get(pk=order_id)  # nothing in Stripe to settle against yet
    if payment_intent is None:
        payment_intent = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)

    with transaction.atomic():
        order = locks.order_lock(order_id)
        _converge(order, payment_intent, actor=actor, reason=reason)
    return order


def _converge(order: Order, pi, *, actor: str, reason: str):
    charge = pi.get("latest_charge") if pi.get("latest_charge") else None
    if isinstance(charge, str):
        # The caller passed an unexpanded PaymentIntent; the charge facts are one call away, but
        # we are inside the lock now, so act on the status alone and let the next settle fill in.
        charge = None
    ids = {"payment_intent": pi.id, **({"charge": charge.id} if charge else {})}
    why = f" ({reason})" if reason else ""
    events = []

    def move(to_state, because):
        events.append(_move(order, to_state, actor=actor, reason=because + why, stripe_ids=ids))

    if pi.metadata.get("order_id") != str(order.id):
        if order.state != S.NEEDS_REVIEW:
            order.attention_reason = "Stripe payment does not carry this order's id"
            move(S.NEEDS_REVIEW, order.attention_reason)
    elif pi.status == "succeeded":
        facts_changed = _record_payment_facts(order, pi, charge)
        refunded = min(charge.amount_refunded, order.amount_cents) if charge else order.amount_refunded_cents
        if refunded != order.amount_refunded_cents:
            order.amount_refunded_cents = refunded
            events.append(OrderEvent(order=order, actor=actor, stripe_ids=ids, reason=(
                f"Stripe shows {format_money(refunded, order.currency)} refunded in total{why}")[:500]))
        if pi.amount_received != order.amount_cents or pi.currency != order.currency:
            if order.state != S.NEEDS_REVIEW:
                order.attention_reason = (
                    f"Stripe received {pi.amount_received} {pi.currency}, "
                    f"the order expects {order.amount_cents} {order.currency}"
                )
                move(S.NEEDS_REVIEW, order.attention_reason)
        elif refunded >= order.amount_cents and order.state != S.REFUNDED:
            if order.state in (S.PENDING, S.PROCESSING, S.FAILED):
                move(S.PAID, "Stripe confirmed the payment")
            move(S.REFUNDED, "Stripe shows the payment fully refunded")
            _revoke_entitlement(order, "refunded")
        elif order.state in (S.PENDING, S.PROCESSING, S.FAILED):
            move(S.PAID, "Stripe confirmed the payment")
            _activate(order, actor=actor, events=events, why=why, ids=ids)
        elif order.state == S.PAID:
            _activate(order, actor=actor, events=events, why=why, ids=ids)
        # A dispute freezes nothing for the customer yet; it puts the order in front of a person.
        if charge is not None and charge.get("disputed") and order.state in (S.PAID, S.ACTIVE):
            move(S.DISPUTED, "The customer's bank opened a dispute on the payment")
        if facts_changed and not events:
            order.save(update_fields=["paid_at", "stripe_charge_id", "card_brand", "card_last4", "updated_at"])
    elif pi.status in ("processing", "requires_action", "requires_capture"):
        if order.state in (S.PENDING, S.FAILED):
            move(S.PROCESSING, f"Stripe reports the payment as {pi.status.replace('_', ' ')}")
    elif pi.status in ("requires_payment_method", "requires_confirmation"):
        error = pi.get("last_payment_error")
        if error and order.state in (S.PENDING, S.PROCESSING):
            order.attention_reason = (error.get("message") or "The card was declined")[:500]
            move(S.FAILED, f"Payment attempt failed: {order.attention_reason}")
        elif not error and order.state in (S.PROCESSING, S.FAILED):
            move(S.PENDING, "Waiting for the customer to pay")
    elif pi.status == "canceled" and order.state in (S.PENDING, S.PROCESSING, S.FAILED):
        move(S.CANCELED, f"Stripe canceled the payment ({pi.get('cancellation_reason') or 'no reason'})")

    if order.state in (S.PAID, S.ACTIVE) and pi.status != "succeeded":
        order.attention_reason = f"Order is {order.state} but Stripe says {pi.status}"
        move(S.NEEDS_REVIEW, order.attention_reason)

    # Money held without service: tell the customer now, before they have to ask.
    money_held_for_review = events and order.state == S.NEEDS_REVIEW and pi.status == "succeeded"
    if money_held_for_review and not order.emails.filter(kind=OutboundEmail.Kind.PAYMENT_RECEIVED).exists():
        outbound_email_queue(order=order, kind=OutboundEmail.Kind.PAYMENT_RECEIVED)

    if events:
        order.save()
        OrderEvent.objects.bulk_create(events)


def _record_payment_facts(order: Order, pi, charge) -> bool:
    """Copy what Stripe knows about the payment onto the order; True if anything changed."""
    before = (order.paid_at, order.stripe_charge_id, order.card_brand, order.card_last4)
    if order.paid_at is None:
        created = charge.created if charge else pi.created
        order.paid_at = datetime.fromtimestamp(created, tz=UTC)
    if charge is not None:
        order.stripe_charge_id = charge.id
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        order.card_brand = card.get("brand") or order.card_brand
        order.card_last4 = card.get("last4") or order.card_last4
    return before != (order.paid_at, order.stripe_charge_id, order.card_brand, order.card_last4)


def _activate(order: Order, *, actor: str, events: list, why: str, ids: dict):
    """Grant access for the paid order: one entitlement (unique per order) and one email."""
    user = _user_for_email(order.email, order.full_name)
    Entitlement.objects.create(
        user=user,
        order=order,
        plan=order.plan,
        starts_at=order.paid_at,
        ends_at=add_months(order.paid_at, order.plan.duration_months),
    )
    order.user = user
    events.append(_move(order, S.ACTIVE, actor=actor, reason="Access granted" + why, stripe_ids=ids))
    outbound_email_queue(order=order, kind=OutboundEmail.Kind.CONFIRMATION)


def _revoke_entitlement(order: Order, why: str):
    Entitlement.objects.filter(order=order, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=why
    )


def _user_for_email(email: str, full_name: str):
    """The customer's account, created on first purchase; one statement either way.

    An upsert (INSERT … ON CONFLICT (email) DO UPDATE … RETURNING) rather than select-then-insert:
    two orders for the same address may activate concurrently, and this cannot race.
    """
    User = get_user_model()
    (user,) = User.objects.bulk_create(
        [User(email=email, full_name=full_name, password="!")],
        update_conflicts=True, unique_fields=["email"], update_fields=["email"],
    )
    return user


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- State machine and history -----------------------------------------------------------------


def _move(order: Order, to_state: str, *, actor: str, reason: str, stripe_ids=None) -> OrderEvent:
    """Change the order's state in memory and return the event; the caller saves both."""
    if not can_transition(order.state, to_state):
        raise InvalidTransition(order, to_state)
    event = OrderEvent(order=order, actor=actor, from_state=order.state, to_state=to_state,
                       reason=reason[:500], stripe_ids=stripe_ids or {})
    order.state = to_state
    order.state_changed_at = timezone.now()
    return event


def _record(order: Order, *, actor: str, reason: str, to_state: str = "", stripe_ids=None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, actor=actor, to_state=to_state, reason=reason[:500],
                                     stripe_ids=stripe_ids or {})


# --- Outbox ---------------------------------------------------------------------------------------


def outbound_email_queue(*, order: Order, kind: str, recipient: str = "") -> OutboundEmail:
    """Owe the customer an email, in the caller's transaction; it is sent after commit."""
    email = OutboundEmail.objects.create(order=order, kind=kind, recipient=recipient or order.email,
                                         next_attempt_at=timezone.now())
    enqueue_after_commit("billing.tasks.send_outbound_email", email.id, task_name=f"email-{email.id}")
    return email


# Seconds to wait before each retry of a failed send; then we give up and support is told.
EMAIL_RETRY_DELAYS = [30, 120, 600, 1800, 3600, 3 * 3600]
# A send that has not finished after this long was interrupted (worker killed mid-call).
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=5)


def outbound_email_send(*, email_id: int) -> OutboundEmail | None:
    """Send one owed email at most once; failures are retried with backoff, then flagged.

    The row is claimed (pending -> sending) in its own transaction before the ESP is called and
    marked sent after. If the process dies in between we cannot know whether the ESP accepted
    it, so the dispatcher marks it `uncertain` for a person to check rather than risk a second
    copy (docs/decisions/0003-outbox-at-most-once.md).
    """
    from billing.emails import build_message

    now = timezone.now()
    with transaction.atomic():
        email = (OutboundEmail.objects.select_for_update(skip_locked=True)
                 .filter(pk=email_id, status=OutboundEmail.Status.PENDING).first())
        if email is None:
            return None  # sent, being sent, or given up: nothing to do
        email.status = OutboundEmail.Status.SENDING
        email.claimed_at = now
        email.attempts += 1
        email.save(update_fields=["status", "claimed_at", "attempts"])

    try:
        message = build_message(email)
        message.send()
    except Exception as exc:  # the ESP, the network or a template: all retried the same way
        logger.warning("Email %s (%s) attempt %s failed: %s", email.id, email.kind, email.attempts, exc)
        with transaction.atomic():
            email = OutboundEmail.objects.select_for_update().get(pk=email_id)
            email.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if email.attempts > len(EMAIL_RETRY_DELAYS):
                email.status = OutboundEmail.Status.FAILED
            else:
                email.status = OutboundEmail.Status.PENDING
                email.next_attempt_at = timezone.now() + timedelta(
                    seconds=EMAIL_RETRY_DELAYS[email.attempts - 1])
            email.save(update_fields=["last_error", "status", "next_attempt_at"])
        return email

    anymail_status = getattr(message, "anymail_status", None)
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().get(pk=email_id)
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        if anymail_status is not None:
            message_id = anymail_status.message_id
            email.esp_message_id = "" if message_id is None else str(message_id)
            email.esp_status = ",".join(sorted(anymail_status.status or []))
        email.save(update_fields=["status", "sent_at", "last_error", "esp_message_id", "esp_status"])
        _record(email.order, actor="system", reason=f"Email sent: {email.get_kind_display()} to {email.recipient}")
    return email


def outbound_email_dispatch_due(*, limit: int = 100) -> dict:
    """Periodic safety net for the outbox: send what is due, flag interrupted sends."""
    now = timezone.now()
    stuck = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENDING,
                                         claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
    uncertain = stuck.update(status=OutboundEmail.Status.UNCERTAIN,
                             last_error="Sending was interrupted; check with the ESP before resending")
    due = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for email_id in due:
        result = outbound_email_send(email_id=email_id)
        sent += bool(result and result.status == OutboundEmail.Status.SENT)
    return {"due": len(due), "sent": sent, "uncertain": uncertain}


# --- Customer self-service --------------------------------------------------------------------

STATUS_LINK_MAX_ORDERS = 5


def order_status_links_send(*, email: str, card_last4: str = "") -> int:
    """Email the status link of this address's recent orders to that address, and only there.

    Returns how many were queued, for logs; the page shows the same words whatever the count, so
    the form reveals nothing about who has bought.
    """
    orders = Order.objects.filter(email=normalize_email(email))
    if card_last4:
        orders = orders.filter(card_last4=card_last4)
    orders = list(orders.order_by("-created_at")[:STATUS_LINK_MAX_ORDERS])
    with transaction.atomic():
        for order in orders:
            outbound_email_queue(order=order, kind=OutboundEmail.Kind.STATUS_LINK)
    return len(orders)


def outbound_email_record_esp_event(*, message_id: str, event_type: str, description: str = "") -> int:
    """What the ESP later tells us about a sent email (delivered, bounced, …); returns rows updated."""
    if not message_id:
        return 0
    email = OutboundEmail.objects.filter(esp_message_id=message_id).select_related("order").first()
    if email is None:
        return 0
    OutboundEmail.objects.filter(pk=email.pk).update(esp_status=event_type)
    if event_type in {"bounced", "rejected", "failed", "complained"}:
        _record(email.order, actor="system",
                reason=f"Email {event_type}: {email.get_kind_display()} to {email.recipient} {description}".strip())
    return 1
