import uuid

from django.db import models


class Alert(models.Model):
    """One case that needs a person, raised once however often the nets see it.

    `key` names the case (e.g. "held-money:42"), so every path may raise it freely: the first
    one creates the row and notifies the team, the others find it and do nothing. Each channel it
    goes out on (email, chat) has its own AlertDelivery: one channel being down never holds up another.
    """

    class Kind(models.TextChoices):
        HELD_MONEY = "held_money", "Money held without service"
        UNMATCHED_CHARGE = "unmatched_charge", "A charge with no order"
        MISMATCH = "mismatch", "Stripe and the order disagree"
        DISPUTE = "dispute", "Dispute opened"
        REFUND_FAILED = "refund_failed", "Refund did not go through"
        EMAIL = "email", "Email not delivered"
        SWEEP_ERROR = "sweep_error", "The sweep could not finish a case"
        # The safety net itself: failing pass after pass, or not finishing at all.
        SWEEP_DOWN = "sweep_down", "The sweep is not working"
        # Customers' emails are not going out (the provider refuses them, or nothing sends them).
        EMAIL_DOWN = "email_down", "Email is not going out"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    key = models.CharField(max_length=200, unique=True)
    order = models.ForeignKey("billing.Order", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="alerts")
    email = models.ForeignKey("outbox.OutboundEmail", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="alerts")
    summary = models.CharField(max_length=300)
    details = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the team first heard of it, on any channel (each channel's own record: AlertDelivery).
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["notified_at"], condition=models.Q(notified_at__isnull=True),
                                name="alert_unnotified_idx")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.summary}"


class AlertDelivery(models.Model):
    """One alert on one channel: announced (sent_at), and once the alert resolves, its all-clear
    (cleared_at). Retried on its own schedule (next_attempt_at) whatever the other channel does."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email to SUPPORT_TEAM_EMAILS"
        CHAT = "chat", "Chat (ALERT_WEBHOOK_URL)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    sent_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="alert_delivery_one_per_channel")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(next_attempt_at__isnull=False),
                                name="alert_delivery_due_idx")]

    def __str__(self):
        return f"{self.alert} by {self.channel}"


class Note(models.Model):
    """What a support person wrote on a case; shown on the order's timeline with its author."""

    order = models.ForeignKey("billing.Order", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        # The console's actions, granted per person: the Support group gets all but refunds.
        permissions = [
            ("recover_order", "Can recover an order (settle it with Stripe now)"),
            ("refund_order", "Can refund an order"),
            ("resend_email", "Can resend a customer email"),
            ("extend_access", "Can extend a customer's access"),
        ]

    def __str__(self):
        return f"Note on {self.order} by {self.author}"


class ActionReceipt(models.Model):
    """One console action, done once: the form's one-time key, so a double submit or two people
    pressing the same button on the same page do one thing."""

    key = models.UUIDField(unique=True)
    action = models.CharField(max_length=50)
    # None for an action on a support email with no order (a reply to a stranger).
    order = models.ForeignKey("billing.Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.action} on {self.order} by {self.user}"


class InboundMessage(models.Model):
    """An email a customer sent to support, matched to their orders, with a reply drafted."""

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for a person"
        ANSWERED = "answered", "Answered"

    message_id = models.CharField(max_length=255, unique=True)  # the provider's id (Postmark's MessageID)
    # The email's own Message-ID header: what a reply's In-Reply-To and References must carry.
    rfc_message_id = models.CharField(max_length=998, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    from_email = models.EmailField()
    from_name = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    # What the provider's envelope says about the From (support/inbound.py): only an authenticated
    # From that is an order's own address gets a reply with that order's details.
    sender_authenticated = models.BooleanField(default=False)
    sender_check = models.CharField(max_length=200, blank=True)
    # Candidates, for support's eyes; the sender may not be their owner (see the diagnosis).
    orders = models.ManyToManyField("billing.Order", blank=True, related_name="inbound_messages")
    matched_at = models.DateTimeField(null=True, blank=True)  # set by the matching task
    # What Backstop found and did on its own before a person reads it.
    diagnosis = models.TextField(blank=True)
    done_automatically = models.CharField(max_length=500, blank=True)
    draft_subject = models.CharField(max_length=300, blank=True)
    draft_body = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    answered_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        permissions = [("reply_inboundmessage", "Can send a reply to a support email")]

    def __str__(self):
        return f"{self.from_email}: {self.subject}"


def _attachment_path(attachment, _filename):
    # Not the sender's file name: it stays in the row, never in a path on disk or a URL.
    return f"support-mail/{attachment.message_id}/{uuid.uuid4().hex}"


class InboundAttachment(models.Model):
    """A file a customer attached to a support email (support/inbound.py), kept in the default
    storage up to INBOUND_ATTACHMENTS_MAX_MB per email. One past the cap keeps its row, with no
    file and `not_kept` saying why, so the case shows what the customer sent."""

    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)  # as the sender named it; shown, and given on download
    content_type = models.CharField(max_length=255, blank=True)  # as the sender declared it
    size = models.PositiveBigIntegerField()  # bytes
    file = models.FileField(upload_to=_attachment_path, max_length=255, blank=True)
    not_kept = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.filename


class SupportReply(models.Model):
    """A reply a support person sent to a support email: the outbox row that carries it, and who."""

    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, related_name="replies")
    email = models.OneToOneField("outbox.OutboundEmail", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"Reply to {self.message} by {self.user}"


_ONE_CASE = (models.Q(order__isnull=False, message__isnull=True) | models.Q(order__isnull=True, message__isnull=False))


class CaseClaim(models.Model):
    """"<name> is on it": who took a case (an order or a support email), one person per case."""

    order = models.OneToOneField("billing.Order", on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="support_claim")
    message = models.OneToOneField(InboundMessage, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="claim")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    claimed_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=_ONE_CASE, name="case_claim_one_case")]

    def __str__(self):
        return f"{self.user} is on {self.order or self.message}"


class CaseView(models.Model):
    """When a person last had a case open, to warn a colleague who opens it too. One row per
    person and case, written at most once a minute (support.services.case_view_record)."""

    order = models.ForeignKey("billing.Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    viewed_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=_ONE_CASE, name="case_view_one_case"),
            models.UniqueConstraint(fields=["user", "order"], condition=models.Q(order__isnull=False),
                                    name="case_view_once_per_order"),
            models.UniqueConstraint(fields=["user", "message"], condition=models.Q(message__isnull=False),
                                    name="case_view_once_per_message"),
        ]

    def __str__(self):
        return f"{self.user} viewed {self.order or self.message} at {self.viewed_at}"
