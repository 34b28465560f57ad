import re

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm, PasswordResetForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.db import transaction

from accounts.emails import PASSWORD_RESET
from accounts.models import User, normalize_email
from outbox.services import outbound_email_queue


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
        rendered by accounts/emails.py from templates/emails/password_reset*, with a fresh token.
        """
        with transaction.atomic():
            for user in self.get_users(self.cleaned_data["email"]):
                outbound_email_queue(user=user, kind=PASSWORD_RESET)


class ReceiptDetailsForm(forms.ModelForm):
    """The company name and VAT number the customer wants printed on their receipts."""

    class Meta:
        model = User
        fields = ["company_name", "vat_number"]
        labels = {"company_name": "Company name", "vat_number": "VAT number"}
        error_messages = {
            "company_name": {"max_length": "Please keep the company name to %(limit_value)d characters or fewer."},
            "vat_number": {"max_length": "A VAT number has at most %(limit_value)d characters."},
        }

    # Letters and digits, with the spaces, dots, dashes and slashes some countries write them with.
    VAT_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9 ./-]{2,}[A-Z0-9]$")

    def clean_company_name(self):
        return " ".join(self.cleaned_data["company_name"].split())

    def clean_vat_number(self):
        vat = " ".join(self.cleaned_data["vat_number"].split()).upper()
        if vat and not (self.VAT_SHAPE.match(vat) and any(c.isdigit() for c in vat)):
            raise forms.ValidationError(
                "That doesn't look like a VAT number: use letters and digits as your tax office writes it, "
                "usually starting with the country code, like DE123456789.")
        return vat


class ReminderSettingsForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["renewal_reminders"]
        labels = {"renewal_reminders": "Email me before my plan ends"}


class CustomerLoginForm(AuthenticationForm):
    """The shop's password login. A staff account is refused exactly as a wrong password is: staff sign
    in at the console's own door, which asks for their authenticator code (support/forms.py)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if user.is_staff:
            raise self.get_invalid_login_error()
