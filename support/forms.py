"""The console's forms: its door (password and authenticator code), a refund, Accept, Extend, a reply."""

from decimal import Decimal

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import normalize_email
from billing.money import format_money

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
    """Refund: the amount a support person types, in major units ("249.00", "$1,249.00"), and why.

    The form is a confirmation page: `confirmed_amount` carries the amount (in cents) the page
    showed, so a refund is made only for an amount the person saw on the button (`confirmed`).
    `remaining` (cents, in `currency`) is what Stripe can still give back; the amount must be
    between one cent and it.
    """

    NOT_AN_AMOUNT = NOT_AN_AMOUNT
    NO_REASON = "Say why: the customer reads it in their refund email."
    # NaN, Infinity, 1e999999 and a third decimal all read NOT_AN_AMOUNT; below a cent, the range.
    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
        error_messages=dict.fromkeys(
            ("required", "invalid", "max_digits", "max_decimal_places", "max_whole_digits"), NOT_AN_AMOUNT))
    reason = forms.CharField(required=False)
    confirmed_amount = forms.CharField(required=False)

    def __init__(self, data=None, *, remaining: int, currency: str, **kwargs):
        if data is not None and "amount" in data:
            data = data.copy()
            data["amount"] = data["amount"].replace("$", "").replace(",", "").strip()
        super().__init__(data, **kwargs)
        self.remaining = remaining
        self.range_error = f"Refund between {format_money(1, currency)} and {format_money(remaining, currency)}."
        self.fields["amount"].error_messages["min_value"] = self.range_error

    def clean(self):
        cleaned = super().clean()
        if "amount" not in cleaned:
            return cleaned  # not an amount: that is what the page asks first
        if not cleaned.get("reason"):
            self.add_error("reason", self.NO_REASON)
        elif not 0 < int(cleaned["amount"] * 100) <= self.remaining:
            # A form error, not the field's: the page still shows (and asks to confirm) what was typed.
            self.add_error(None, self.range_error)
        return cleaned

    def _typed(self, name):
        """What the person typed in `name`, cleaned, if it cleaned: the page shows it again."""
        if not self.is_bound:
            return None
        self.is_valid()  # cleans the form (once)
        return self.cleaned_data.get(name)

    def amount_cents(self) -> int:
        """The typed amount in cents once it reads as an amount (in range or not); else everything left."""
        amount = self._typed("amount")
        return self.remaining if amount is None else int(amount * 100)

    def reason_text(self) -> str:
        return self._typed("reason") or ""

    @property
    def confirmed(self) -> bool:
        """Valid, and the amount is the one the page showed on its button."""
        return self.is_valid() and self.cleaned_data["confirmed_amount"] == str(self.amount_cents())

    def error(self) -> str:
        """The one thing the page asks the person to fix, in the order it asks: the amount, the
        reason, then the amount's range."""
        if not self.is_bound or self.is_valid():
            return ""
        for field in ("amount", "reason", NON_FIELD_ERRORS):
            if self.errors.get(field):
                return self.errors[field][0]
        return self.NOT_AN_AMOUNT


def first_error(form: forms.Form) -> str:
    """The first thing a one-line console message asks the person to fix."""
    return next(iter(form.errors.values()))[0] if form.errors else ""


class AcceptAmountForm(forms.Form):
    """Accept what Stripe took: why, for the order's history."""

    reason = forms.CharField(error_messages={
        "required": "Say why the amount Stripe took is accepted, for the order's history."})


class ReturnedAnotherWayForm(forms.Form):
    """A refund the bank sent back, returned outside Stripe: how, for the order's history."""

    how = forms.CharField(max_length=300, error_messages={
        "required": "Say how the money was returned (a bank transfer, a cheque), for the order's history."})


class ExtendAccessForm(forms.Form):
    """Extend access: whole days, 1 to 366, and why, for the customer's history."""

    days = forms.IntegerField(min_value=1, max_value=366, error_messages=dict.fromkeys(
        ("required", "invalid", "min_value", "max_value"), "Extend by 1 to 366 days."))
    reason = forms.CharField(error_messages={"required": "Say why, for the customer's history."})


class ReplyForm(forms.Form):
    """Send reply: the person's edited draft, the page's one-time key and the case as they saw it."""

    subject = forms.CharField(max_length=300)
    body = forms.CharField(max_length=50_000)
    key = forms.UUIDField()
    seen = forms.CharField(max_length=50)
