from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from outbox import kinds


def once_key(about, kind: str) -> str:
    """The dedupe_key of a once-per-subject kind, e.g. "billing.order:42:confirmation"."""
    return f"{about._meta.label_lower}:{about.pk}:{kind}"


class OutboundEmailQuerySet(models.QuerySet):
    def about(self, obj):
        """The emails about this object (an app's own relation, e.g. `order.emails`, says the same)."""
        return self.filter(about_type=ContentType.objects.get_for_model(obj), about_id=obj.pk)


class OutboundEmail(models.Model):
    """Transactional outbox: written in the transaction that decides an email is owed, sent after.

    An email is about something an app owns (`about`: an order, say) or about an account (`user`:
    the password link), never both (a database constraint); a person's reply may be about nothing.
    The kinds, what each says and whether it is owed once per subject, are registered by the apps
    (outbox/kinds.py); `kind` is checked against them when an email is owed, not bound to choices.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        UNCERTAIN = "uncertain", "Unknown: sending was interrupted"
        FAILED = "failed", "Gave up"

    # Not sent yet and still being tried (waiting, or a send under way); failed and uncertain rows
    # are given up on and become support's cases.
    STILL_TRYING = (Status.PENDING, Status.SENDING)

    # What the email is about, as a generic link: the outbox sits below the apps whose rows these are.
    # The owning app declares the reverse (billing: GenericRelation `Order.emails`), which also deletes
    # an object's emails with it.
    about_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    about_id = models.PositiveBigIntegerField(null=True, blank=True)
    about = GenericForeignKey("about_type", "about_id")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="outbound_emails")
    kind = models.CharField(max_length=30)
    recipient = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # An email owed at most once for ever: a second row with the same key cannot be inserted. The
    # outbox fills it for once-per-subject kinds ("billing.order:<id>:confirmation"); callers give
    # their own for other "once per something" (e.g. "renewal:<entitlement>:30d").
    dedupe_key = models.CharField(max_length=100, unique=True, null=True, blank=True)
    # A person's words, for a reply (the other kinds render their templates), and the Message-ID of
    # the email it answers, so the customer's mail program threads it.
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    # Sent because a person chose to (the console's "Send sign-in link"), not by Backstop on its own:
    # who, as the customer reads it ("Ana from our support team"), and why, in the customer's words.
    sent_by = models.CharField(max_length=200, blank=True)
    send_reason = models.CharField(max_length=500, blank=True)
    # What this email states, decided when it was owed: e.g. days added and the new end for an
    # extension ({"days": 30, "ends_at": "<ISO 8601>"}). The email renders these, never today's state.
    facts = models.JSONField(default=dict, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True)
    esp_status = models.CharField(max_length=50, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the kind's step after sending finished (billing: the note on the order's PaymentIntent that
    # survives a database restore, docs/decisions/0012-what-was-sent-survives-a-restore.md).
    followed_up_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OutboundEmailQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(about_type__isnull=True, about_id__isnull=True)
                           | models.Q(about_type__isnull=False, about_id__isnull=False, user__isnull=True)),
                name="outbound_email_about_a_thing_or_an_account",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbound_email_due_idx"),
            models.Index(fields=["about_type", "about_id"], name="outbound_email_about_idx"),
            models.Index(fields=["sent_at"], name="outbound_email_follow_up_idx",
                         condition=models.Q(status="sent", followed_up_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient} ({self.status})"

    def save(self, *args, **kwargs):
        # Every row of a once-per-subject kind carries its key, however it is written, so the
        # database's unique index is what keeps "exactly one confirmation per order".
        if self._state.adding and self.dedupe_key is None and self.about_id is not None:
            kind = kinds.find(self.kind)
            if kind is not None and kind.once_per_subject:
                self.dedupe_key = once_key(self.about, self.kind)
        super().save(*args, **kwargs)

    def get_kind_display(self) -> str:
        """The kind's label as its app registered it (what Django's choices would give)."""
        return kinds.label(self.kind)
