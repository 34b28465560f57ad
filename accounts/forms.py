from django.contrib.auth.forms import BaseUserCreationForm, PasswordResetForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.db import transaction

from accounts.models import User, normalize_email
from billing import services
from billing.models import OutboundEmail


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name"]


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class CustomerPasswordResetForm(PasswordResetForm):
    """Also reaches customers who have never set a password.

    Checkout creates accounts without one (they sign in with an emailed link); Django's form
    skips users with unusable passwords, which would leave exactly those customers unable to
    set their first password.
    """

    def get_users(self, email):
        return User.objects.filter(email=normalize_email(email), is_active=True)

    def save(self, **kwargs):
        """Owe each matching account a password link, through Backstop's outbox: the worker sends it
        after commit and retries if the email provider fails; nothing is sent inside the request.

        Django's arguments (templates, domain, token generator) are not used: the outbox row is
        rendered by billing/emails.py from templates/emails/password_reset*, with a fresh token.
        """
        with transaction.atomic():
            for user in self.get_users(self.cleaned_data["email"]):
                services.outbound_email_queue(user=user, kind=OutboundEmail.Kind.PASSWORD_RESET)
