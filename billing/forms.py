from django import forms


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254,
                             help_text="Your receipt, confirmation and sign-in link go here.")
    full_name = forms.CharField(label="Name", max_length=200, required=False)
    # One per rendering of the form, so a double submit finds the order the first one created.
    nonce = forms.UUIDField(widget=forms.HiddenInput)


class OrderLookupForm(forms.Form):
    email = forms.EmailField(label="Email you paid with", max_length=254)
    last4 = forms.RegexField(label="Last 4 digits of the card (optional)", regex=r"^\d{4}$", required=False,
                             error_messages={"invalid": "Enter exactly four digits, or leave it empty."})
