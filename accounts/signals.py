from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts.services import signin_record


@receiver(user_logged_in, dispatch_uid="accounts.record_signin")
def record_signin(sender, request, user, **kwargs):
    by_link = getattr(user, "backend", "") == "sesame.backends.ModelBackend"
    signin_record(user=user, method="a sign-in link" if by_link else "their password")
