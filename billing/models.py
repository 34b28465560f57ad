import secrets
import uuid
from datetime import UTC

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from billing.money import format_money

currency_validator = RegexValidator(r"^[a-z]{3}$", "Use a lowercase ISO 4217 code, e.g. usd.")

# Crockford's base32 without I, L, O, U: nothing a customer can misread over the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"BK-{body[:4]}-{body[4:]}"


class Plan(models.Model):
    """What a customer can buy. Money is integer minor units (cents) with its currency."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    amount_cents = models.PositiveIntegerField(validators=[MinValueValidator(50)])
    currency = models.CharField(max_length=3, default="usd", validators=[currency_validator])
    duration_months = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Stripe's minimum charge in USD; below it the PaymentIntent is refused anyway.
            models.CheckConstraint(condition=models.Q(amount_cents__gte=50), name="plan_amount_min"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[a-z]{3}$"), name="plan_currency_iso"
            ),
            models.CheckConstraint(condition=models.Q(duration_months__gte=1), name="plan_duration_min"),
        ]

    def __str__(self):
        return f"{self.name} ({self.price_display})"

    @property
    def price_display(self):
        return format_money(self.amount_cents, self.currency)


class OrderState(models.TextChoices):
    PENDING = "pending", "Awaiting payment"
    PROCESSING = "processing", "Payment in progress"
    FAILED = "failed", "Payment failed"
    PAID = "paid", "Paid, activating"
    ACTIVE = "active", "Active"
    CANCELED = "canceled", "Canceled"
    REFUND_PENDING = "refund_pending", "Refund in progress"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"
    NEEDS_REVIEW = "needs_review", "Needs review"


class Order(models.Model):
    """The intent to buy, written before any money moves; the one row every path converges on."""

    reference = models.CharField(max_length=12, unique=True, default=new_reference, editable=False)
    # What the customer's signed status link carries: unguessable, and not the row id.
    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # One per rendering of the checkout form, so a double submit finds the first order.
    checkout_nonce = models.UUIDField(unique=True, null=True, blank=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="orders")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    email = models.EmailField()
    full_name = models.CharField(max_length=200, blank=True)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, validators=[currency_validator])
    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.PENDING)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    # Why the order is in needs_review (or the last failed attempt), in words support can act on.
    attention_reason = models.CharField(max_length=500, blank=True)

    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # The PaymentIntent's status as settle last read it, and since when (first sight: Stripe's
    # creation time). Says "your bank asked you to confirm" on the status page, and lets the sweep
    # cancel an attempt left unfinished for ABANDONED_PAYMENT_AFTER.
    payment_status = models.CharField(max_length=30, blank=True)
    payment_status_at = models.DateTimeField(null=True, blank=True)
    # What Stripe took (the PaymentIntent's amount_received) and in which currency: the figures
    # every page and email shows once money has moved. Ours above is what we asked for; where the
    # two differ, support sees both and the customer sees Stripe's.
    amount_received_cents = models.PositiveIntegerField(null=True, blank=True)
    received_currency = models.CharField(max_length=3, blank=True)
    # What Stripe has refunded of it (the charge's amount_refunded), in received_currency.
    amount_refunded_cents = models.PositiveIntegerField(default=0)
    # Of a refund the customer's bank sent back (Stripe holds it again), what a person returned to
    # the customer outside Stripe (a bank transfer): billing.services.order_returned_another_way.
    returned_another_way_cents = models.PositiveIntegerField(default=0)
    # The line on the customer's bank statement (the charge's calculated_statement_descriptor).
    statement_descriptor = models.CharField(max_length=30, blank=True)
    # A random id kept in the browser's session: two checkouts from one browser find each other.
    browser_key = models.CharField(max_length=32, blank=True)
    # Checkout offered this payment as adding time to the running plan of an address the browser
    # had proved (Renew): a renewal, chosen, and never "paid twice" (issue 20).
    renewal = models.BooleanField(default=False)
    # The company and VAT number this payment's receipt prints, frozen at checkout from the account
    # of a customer who proved the address (signed in, or a Renew link); never read from the live
    # account, so a later change on the account page, or someone else's account, never rewrites it.
    buyer_company_name = models.CharField(max_length=200, blank=True)
    buyer_vat_number = models.CharField(max_length=50, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Money held without service: since when, and when it is refunded automatically unless the
    # order is finished first (HELD_MONEY_DEADLINE). Cleared once the customer has service or
    # their money back.
    held_since = models.DateTimeField(null=True, blank=True)
    refund_deadline_at = models.DateTimeField(null=True, blank=True)
    # Why the money went back, in words the customer reads in the refund email.
    refund_reason = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The outbox's rows about this order (outbox.OutboundEmail.about); deleted with it. Exactly one
    # confirmation, payment-received and refund email each: their kinds are once per subject, and
    # the outbox's unique dedupe_key ("billing.order:<id>:<kind>") makes the database refuse a second.
    emails = GenericRelation("outbox.OutboundEmail", content_type_field="about_type", object_id_field="about_id")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_cents__gte=50), name="order_amount_min"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[a-z]{3}$"), name="order_currency_iso"
            ),
            # Nothing is refunded beyond what Stripe took (or, before it took anything, asked for).
            models.CheckConstraint(
                condition=(models.Q(amount_received_cents__isnull=True,
                                    amount_refunded_cents__lte=models.F("amount_cents"))
                           | models.Q(amount_refunded_cents__lte=models.F("amount_received_cents"))),
                name="order_refund_not_above_received",
            ),
            # Money received is a fact with a charge behind it.
            models.CheckConstraint(
                condition=~models.Q(state__in=["paid", "active"]) | models.Q(paid_at__isnull=False),
                name="order_paid_has_paid_at",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "state_changed_at"]),
            models.Index(fields=["email"]),
            models.Index(fields=["card_last4"]),
            models.Index(fields=["refund_deadline_at"], condition=models.Q(refund_deadline_at__isnull=False),
                         name="order_refund_deadline_idx"),
        ]

    def __str__(self):
        return self.reference

    @property
    def amount_display(self):
        """The price we asked for. Say `paid_display` wherever money has moved."""
        return format_money(self.amount_cents, self.currency)

    @property
    def paid_currency(self) -> str:
        return self.received_currency or self.currency

    @property
    def paid_cents(self) -> int:
        """What Stripe took, once it has; until then the price asked for."""
        return self.amount_cents if self.amount_received_cents is None else self.amount_received_cents

    @property
    def paid_display(self):
        return format_money(self.paid_cents, self.paid_currency)

    @property
    def refunded_display(self):
        return format_money(self.amount_refunded_cents, self.paid_currency)

    @property
    def refundable_cents(self) -> int:
        return max(0, self.paid_cents - self.amount_refunded_cents) if self.amount_received_cents is not None else 0

    @property
    def refund_sent_back_cents(self) -> int:
        """Of a refunded order, what the customer's bank sent back and Stripe holds again (a refund
        Stripe marked failed lowers its total refunded; billing/settle_decision.py)."""
        if self.state != OrderState.REFUNDED or self.amount_received_cents is None:
            return 0
        return max(0, self.paid_cents - self.amount_refunded_cents - self.returned_another_way_cents)

    @property
    def refund_sent_back_display(self):
        return format_money(self.refund_sent_back_cents, self.paid_currency)

    @property
    def returned_another_way_display(self):
        return format_money(self.returned_another_way_cents, self.paid_currency)

    @property
    def refundable_display(self):
        return format_money(self.refundable_cents, self.paid_currency)

    @property
    def amounts_differ(self) -> bool:
        """Stripe took another amount or currency than the order asked for (support sees both)."""
        return self.amount_received_cents is not None and (
            self.amount_received_cents != self.amount_cents or self.paid_currency != self.currency)


class StripeCustomer(models.Model):
    """The one Stripe Customer of an address: created once, reused by every purchase and renewal,
    so Stripe's dashboard and support's `cus_` search show all of a person's payments together."""

    email = models.EmailField(unique=True)  # normalised (accounts.models.normalize_email)
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.email}: {self.stripe_customer_id}"


class OrderEvent(models.Model):
    """Append-only history of an order: every transition and every notable fact, with its actor."""

    class Kind(models.TextChoices):
        # Written by billing/services/history.py, one function per kind; code decides by kind and
        # data, never by the reason's wording (kept as the sentence of record and for `legacy`).
        CREATED = "created", "Order created"
        RECREATED = "recreated", "Order recreated from Stripe"
        PAYMENT_SET_UP = "payment_set_up", "Payment set up"
        PAYMENT_LINKED = "payment_linked", "Linked to its Stripe payment"
        STATE_CHANGED = "state_changed", "State changed"
        ACCESS_GRANTED = "access_granted", "Access granted"
        REFUND_RECORDED = "refund_recorded", "Refund seen at Stripe"
        MONEY_HELD = "money_held", "Money held"
        REFUND_REQUESTED = "refund_requested", "Refund requested"
        REFUND_ACCEPTED = "refund_accepted", "Refund accepted by Stripe"
        REFUND_FAILED = "refund_failed", "Refund not confirmed"
        ACCEPTED_AMOUNT = "accepted_amount", "Amount accepted"
        RETURNED_ANOTHER_WAY = "returned_another_way", "Money returned another way"
        PAYMENT_CANCELED = "payment_canceled", "Payment canceled"
        TIME_MOVED = "time_moved", "Time moved"
        ACCESS_EXTENDED = "access_extended", "Access extended"
        EMAIL_SENT = "email_sent", "Email sent"
        EMAIL_BOUNCED = "email_bounced", "Email not delivered"
        EMAIL_ALREADY_SENT = "email_already_sent", "Email already sent"
        RESEND_ASKED = "resend_asked", "Resend asked"
        SIGNIN_LINK_SENT = "signin_link_sent", "Sign-in link sent"
        REPLIED = "replied", "Replied to the customer"
        CASE_TAKEN = "case_taken", "Took the case"
        TEAM_ALERTED = "team_alerted", "Team alerted"
        SIGNED_IN = "signed_in", "Signed in"
        REMINDERS_OFF = "reminders_off", "Renewal reminders off"
        LEGACY = "legacy", "Earlier event"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=30, choices=Kind.choices, db_index=True)
    # People act as actor_user (the staff member); `actor` names the rest: checkout, webhook, sweep,
    # customer, system (and support:<email> on staff rows, as written before actor_user existed).
    actor = models.CharField(max_length=120)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    from_state = models.CharField(max_length=20, choices=OrderState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=OrderState.choices, blank=True)
    reason = models.CharField(max_length=500)
    # The facts behind the sentence: amounts in cents with currency, days, ISO dates, email kinds.
    data = models.JSONField(default=dict, blank=True)
    stripe_ids = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        if self.to_state:
            return f"{self.order_id}: {self.from_state or '-'} -> {self.to_state} by {self.actor}"
        return f"{self.order_id}: {self.reason} ({self.actor})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Order events are append-only.")
        super().save(*args, **kwargs)


class OrderRefund(models.Model):
    """One refund Stripe made of an order's payment, as Stripe reports it: a line on the receipt."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, validators=[currency_validator])
    status = models.CharField(max_length=30)
    # Stripe's time of the refund, not when we learned of it.
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.stripe_refund_id}: {self.amount_display} ({self.status})"

    @property
    def amount_display(self):
        return format_money(self.amount_cents, self.currency)


class StripeSyncCursor(models.Model):
    """How far the pull sync has read each Stripe list: the newest `created` it has mirrored.

    Kept in the database on purpose: a database restored from a backup also rewinds the cursor,
    so the next sweep re-reads from Stripe everything the backup does not know about.
    """

    resource = models.CharField(max_length=50, unique=True)
    created_gte = models.BigIntegerField(help_text="Unix time (Stripe's clock) of the newest object seen.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.resource} from {self.created_gte}"


class ReconcileRun(models.Model):
    """One pass of the sweep: what it looked at, what it found, what it did and what failed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "Finished"
        ERRORS = "errors", "Finished with errors"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped: another sweep was running"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    host = models.CharField(max_length=255, blank=True)
    # The mirror rows changed since this moment were examined (plus every order still open);
    # empty means every mirrored charge was.
    window_start = models.DateTimeField(null=True, blank=True)
    widened = models.BooleanField(default=False, help_text="Run with --since")
    counts = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        # Shown as the console page's title: a time says its zone (issue 15).
        return f"Sweep {self.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({self.get_status_display()})"


class Lease(models.Model):
    """A named lease that one process holds until it lets go or the lease runs out: the sweep's
    "one at a time" across hosts.

    A row, not a session-level advisory lock: behind PgBouncer's transaction pooling each statement
    may run on a different server connection, so a session lock taken by one statement and released
    by another stays held for ever on a connection nobody owns, and every later sweep would skip
    (docs/scaling.md). A lease also frees itself when its holder is SIGKILLed.
    """

    name = models.CharField(primary_key=True, max_length=50)
    holder = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name}: {self.holder or 'free'} until {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"


class ErasureRecord(models.Model):
    """That a person was erased, and what was done: never who (docs/decisions/0025-erasure.md).

    Kept here for the console and for finishing an erasure a crash interrupted; the record that
    survives a restore of an older backup is the `backstop_erased` mark on their Stripe objects.
    """

    # What their address became on every row kept for bookkeeping: erased-<keyed hash>@invalid.
    placeholder = models.CharField(max_length=100, unique=True)
    actor = models.CharField(max_length=200)
    references = models.JSONField(default=list, blank=True)
    stripe_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When Stripe's copies were cleared (the mark written), and when every local row was.
    stripe_done_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("export_customer", "Can export everything held about a customer"),
            ("erase_customer", "Can erase a customer for good"),
        ]

    def __str__(self):
        return f"{self.placeholder} erased by {self.actor}"
