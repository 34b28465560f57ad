"""The names and labels of the emails billing sends; billing/emails.py registers them with the outbox."""

from django.db import models


class Kind(models.TextChoices):
    CONFIRMATION = "confirmation", "Order confirmation"
    PAYMENT_RECEIVED = "payment_received", "We have your payment, we're on it"
    STATUS_LINK = "status_link", "Order status link"
    REFUND = "refund", "Refund confirmation"
    # Support's "Send sign-in link": about the order, whose reference and plan it names.
    SIGNIN_LINK = "signin_link", "Sign-in link"
    ALREADY_YOURS = "already_yours", "Checkout with an address that has the plan"
    RENEWAL_REMINDER = "renewal_reminder", "Plan ends soon"
    PLAN_ENDED = "plan_ended", "Plan has ended"
    # Support's Extend: the days added and the new end of all paid time are decided in the
    # extension's transaction and kept in the row's `facts`, so the email says what was done,
    # not what is true when it is sent.
    ACCESS_EXTENDED = "access_extended", "Access extended by support"


# Kinds a customer must get exactly once per order; the others may repeat (e.g. a lookup).
ONCE_PER_ORDER = [Kind.CONFIRMATION, Kind.PAYMENT_RECEIVED, Kind.REFUND]
