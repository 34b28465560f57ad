from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def normalize_email(email: str) -> str:
    """One spelling per address, so uniqueness and look-ups ignore how people type capitals."""
    return email.strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra_fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, email):
        # People type their address with whatever capitals they like.
        return self.get(email=normalize_email(email))


class User(AbstractBaseUser, PermissionsMixin):
    """A customer or a support person. The email address is the login; there is no username."""

    # Stored lowercased (see normalize_email) so a plain unique index is case-insensitive.
    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    # Printed on receipts if the customer adds them on their account page.
    company_name = models.CharField("company", max_length=200, blank=True)
    vat_number = models.CharField("VAT number", max_length=50, blank=True)
    # Emails before (and on the day) a plan ends; off by the one-click link or the account page.
    renewal_reminders = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Can sign in to the support console."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="user_email_lowercase"),
        ]

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Entitlement(models.Model):
    """What an order paid for: access until `ends_at`. Exactly one per paying order."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="entitlements")
    # One-to-one at the database level: a second activation of the same order cannot insert.
    order = models.OneToOneField("billing.Order", on_delete=models.PROTECT, related_name="entitlement")
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # Days support added (Extend): part of this period's length, so when the periods after it are
    # laid end to end again (a refund, another extension) the days are neither lost nor overlapped.
    extra_days = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    # When the scheduled check (accounts.access.access_ends_mark) saw this period run out: each end
    # is marked, and announced, once. Cleared when an extension or a restack moves the end ahead.
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")),
                                   name="entitlement_ends_after_start"),
        ]

    def __str__(self):
        return f"{self.plan.name} for {self.user} until {self.ends_at:%Y-%m-%d}"

    def is_active(self, now=None):
        now = now or timezone.now()
        return self.revoked_at is None and self.starts_at <= now < self.ends_at


class AccessDelivery(models.Model):
    """One access event for the product behind the shop (ACCESS_WEBHOOK_URL), and how its delivery went.

    Written in the same transaction as the access change it reports, so a change that commits is
    delivered at least once, and one that rolls back never is. Delivered oldest first per customer:
    a later event waits until the earlier one has been taken (accounts/webhooks.py).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be delivered"
        DELIVERED = "delivered", "Delivered"

    # The Standard Webhooks `webhook-id`: the same on every retry, so the product can ignore repeats.
    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=40)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="access_deliveries")
    email = models.EmailField(max_length=254)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender claims a delivery until this moment, so two workers never post it at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "access deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="accessdelivery_due")]

    def __str__(self):
        return f"{self.event_type} for {self.email}"
