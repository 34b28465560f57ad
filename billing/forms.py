from django import forms

from accounts.email_typos import suggest_email


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254,
                             help_text="Your receipt, confirmation and sign-in link go here.")
    full_name = forms.CharField(label="Name", max_length=200, required=False)
    # One per rendering of the form, so a double submit finds the order the first one created.
    nonce = forms.UUIDField(widget=forms.HiddenInput)
    # The customer saw our "did you mean …?" and kept what they typed.
    email_confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The customer saw that this address already bought the plan and chose to buy again.
    buy_again = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # A Renew link's token, carried through the form: it proves the address, so checkout may say
    # until when the plan runs.
    renew = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email")
        self.suggestion = suggest_email(email) if email and not cleaned.get("email_confirmed") else None
        if self.suggestion:
            # Not an error in what they typed, a question; the page offers both answers as buttons.
            raise forms.ValidationError("Please check your email address.", code="email_suggestion")
        return cleaned


class OrderLookupForm(forms.Form):
    email = forms.EmailField(label="Email you paid with", max_length=254)
    last4 = forms.RegexField(label="Last 4 digits of the card (optional)", regex=r"^\d{4}$", required=False,
                             error_messages={"invalid": "Enter exactly four digits, or leave it empty."})
