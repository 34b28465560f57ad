"""A customer's sign-in on their orders' timelines, so support sees that they got in. Billing listens
to Django's user_logged_in (connected in BillingConfig.ready) so that accounts writes no order history."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from billing.services.history import events_signed_in


@receiver(user_logged_in, dispatch_uid="billing.record_signin")
def record_signin(sender, request, user, **kwargs):
    events_signed_in(user, by_link=getattr(user, "backend", "") == "sesame.backends.ModelBackend")
