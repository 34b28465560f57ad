"""The console's forms: its door (password and authenticator code), the refund amount, a reply."""

from decimal import Decimal

from django import forms
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import normalize_email

# One answer for a wrong address, a wrong password, a missing code and a wrong code: the page must
# not tell a guesser which of them was right.
NO_MATCH = "That email, password and code do not match a staff account. Check them and try again."
NOT_AN_AMOUNT = "Enter an amount such as 249.00."
CODE_USED = ("That code has already been used to sign in. Wait for your authenticator app to show the "
             "next one (a new code every 30 seconds) and enter that.")


def totp_code_was_used(email: str, token: str) -> bool:
    """Whether `token` is a code this account already signed in with (django-otp refuses it again)."""
    if not token.strip().isdigit():
        return False
    for device in TOTPDevice.objects.filter(user__email=normalize_email(email), confirmed=True):
        used = range(max(device.last_t - device.tolerance, 0), device.last_t + 1) if device.last_t >= 0 else ()
        if any(int(token) == hotp(device.bin_key, counter, device.digits) for counter in used):
            return True
    return False


class StaffLoginForm(OTPAdminAuthenticationForm):
    """The console's login with two-factor on: email, password and the code from the app, in one step.

    django-otp's own form shows a device list and keeps the password once the password is right, and
    words a missing code differently from a wrong password: each told a guesser the password was right.
    Here every failure reads NO_MATCH, the page is the same, and the code is checked against all the
    person's devices. A code already used says so (whatever the password), instead of looking wrong.
    """

    error_messages = {**OTPAdminAuthenticationForm.error_messages, "invalid_login": NO_MATCH}
    otp_error_messages = {**OTPAdminAuthenticationForm.otp_error_messages,
                          "token_required": NO_MATCH, "invalid_token": NO_MATCH}
    otp_token = forms.CharField(required=False, label="Code from your authenticator app")

    def clean(self):
        username, token = self.cleaned_data.get("username"), self.cleaned_data.get("otp_token") or ""
        if username and totp_code_was_used(username, token):
            raise forms.ValidationError(CODE_USED, code="code_used")
        return super().clean()

    def _chosen_device(self, user):
        return None  # any of the person's devices (django_otp's match_token)

    def _update_form(self, user):
        pass  # no device list, no password kept: the page must not change once the password is right


class RefundAmountForm(forms.Form):
    """The amount a support person types, in major units ("249.00", "$1,249.00")."""

    NOT_AN_AMOUNT = NOT_AN_AMOUNT
    # NaN, Infinity, 1e999999 and a third decimal all read NOT_AN_AMOUNT; below a cent, the view says the range.
    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
        error_messages=dict.fromkeys(
            ("required", "invalid", "max_digits", "max_decimal_places", "max_whole_digits"), NOT_AN_AMOUNT))

    def __init__(self, data=None, **kwargs):
        if data is not None and "amount" in data:
            data = data.copy()
            data["amount"] = data["amount"].replace("$", "").replace(",", "").strip()
        super().__init__(data, **kwargs)

    def amount_cents(self) -> int:
        return int(self.cleaned_data["amount"] * 100)


class ReplyForm(forms.Form):
    """Send reply: the person's edited draft, the page's one-time key and the case as they saw it."""

    subject = forms.CharField(max_length=300)
    body = forms.CharField(max_length=50_000)
    key = forms.UUIDField()
    seen = forms.CharField(max_length=50)
